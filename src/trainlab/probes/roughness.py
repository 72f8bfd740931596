r"""The roughness-index probe: :func:`~trainlab.analyses.roughness.roughness_index` of the
loss around the current parameters, every ``every`` steps (Wu, Jian, Du, Chen & Zhou 2021;
papers.md row 15). The index, its sources and the deviations from the paper are described in
:mod:`trainlab.analyses.roughness`.
"""

from __future__ import annotations

import torch

from trainlab.analyses.roughness import (
    roughness_index,
)
from trainlab.errors import check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


class RoughnessIndex(Probe):
    """``roughness_index``, ``roughness/ntv_mean`` and ``roughness/ntv_std`` of the batch
    loss (:func:`roughness_index` at the paper's defaults unless given): ``directions``
    times ``intervals + 1`` loss evaluations per measurement, so pick ``every`` to match.
    Nothing is reported when a slice is constant (the index is undefined).

    The paper observes the index rising then falling along gradient-descent paths, and
    larger at deep Ritz than at deep Galerkin minimizers.

    Deviations from the paper: those of :mod:`trainlab.analyses.roughness`: the paper's definition
    section could not be read, so the index follows its abstract and the authors' code; the loss is
    evaluated in eval mode; a constant slice gives no index. The probe uses this step's batch loss.
    """

    name = "roughness"

    def __init__(self, every: int = 1, directions: int = 100, radius: float = 0.1,
                 intervals: int = 10):
        super().__init__(every)
        check_range("directions", directions, low=2, owner="roughness")
        check_range("radius", radius, low=0.0, low_open=True, owner="roughness")
        check_range("intervals", intervals, low=2, owner="roughness")
        self.directions, self.radius, self.intervals = directions, radius, intervals

    def measure(self, ctx: ProbeContext) -> Measurement:
        x, y = ctx.batch
        res = roughness_index(ctx.model, ctx.loss_fn, x, y, directions=self.directions,
                              radius=self.radius, intervals=self.intervals,
                              generator=ctx.generator)
        if not torch.isfinite(res.ntv).all():
            return ctx.skip(self.name, "the loss is constant along a random slice (or not "
                            "finite): the normalized total variation is undefined")
        return {"roughness_index": res.index, "roughness/ntv_mean": res.mean,
                "roughness/ntv_std": res.std}


PROBES.register("roughness", RoughnessIndex, papers=(15,),
                metrics=("roughness_index", "roughness/*"), plot="curves", title="Loss roughness",
                summary="roughness index: std/mean of the normalized total variation of "
                        "filter-normalized random 1-D loss slices")
