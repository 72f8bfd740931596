"""Roughness index of the batch loss around the current parameters (Wu et al. 2021,
papers.md row 15); see :func:`trainlab.probes.landscape.roughness_index`."""

from __future__ import annotations

from trainlab.errors import check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.landscape import roughness_index


class RoughnessIndex(Probe):
    """``roughness_index`` and ``roughness/ntv_mean`` on ``directions`` filter-normalized
    random 1-D slices of radius ``radius`` (``points`` loss evaluations each).

    The paper observes the index rising then falling along gradient-descent paths."""

    name = "roughness"

    def __init__(self, every: int = 1, directions: int = 20, radius: float = 1.0,
                 points: int = 51):
        super().__init__(every)
        check_range("directions", directions, low=2, owner="roughness")
        check_range("radius", radius, low=0.0, low_open=True, owner="roughness")
        check_range("points", points, low=3, owner="roughness")
        self.directions, self.radius, self.points = directions, radius, points

    def measure(self, ctx: ProbeContext) -> Measurement:
        x, y = ctx.batch
        res = roughness_index(ctx.model, ctx.loss_fn, x, y, directions=self.directions,
                              radius=self.radius, points=self.points, generator=ctx.generator)
        return {"roughness_index": res.index, "roughness/ntv_mean": float(res.ntv.mean())}


PROBES.register("roughness", RoughnessIndex, papers=(15,),
                summary="roughness index: spread of normalized total variation of 1-D slices")
