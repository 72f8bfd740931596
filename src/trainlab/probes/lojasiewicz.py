r"""The Łojasiewicz probe: the LGI constants and the path-length bound of
:mod:`trainlab.analyses.lojasiewicz` from the (loss, gradient norm) pairs of the training
steps (Liu, Yang, Hayou & Li, TMLR 2022; papers.md row 44). The inequality, the bound, the
sources and the deviations from the paper are described in :mod:`trainlab.analyses.lojasiewicz`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from trainlab.analyses.lojasiewicz import (
    THETAS,
    best_fit,
    lgi_constants,
)
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


class Lojasiewicz(Probe):
    """``lgi/c_pl`` (the constant at theta = 1/2), ``lgi/theta``, ``lgi/c`` and
    ``lgi/length_bound`` (the best bound over the theta grid), ``lgi/distance`` (distance
    travelled from initialization, which the bound caps under gradient flow) and
    ``lgi/ratio`` (this step's :math:`\\|g\\| / \\sqrt{L - L^*}`).

    Args:
        every: cadence (the estimate uses only the steps measured).
        loss_min: :math:`L^*` (default 0).
    """

    name = "lojasiewicz"

    def __init__(self, every: int = 1, loss_min: float = 0.0):
        super().__init__(every)
        self.loss_min = float(loss_min)
        self._gap0: float | None = None
        self._mins = [math.inf] * len(THETAS)

    def measure(self, ctx: ProbeContext) -> Measurement:
        grads = ctx.grads()
        if ctx.loss is None or not grads:
            return ctx.skip(self.name, "needs the step's loss and gradients (p.grad)")
        gap = float(ctx.loss) - self.loss_min
        if gap <= 0:
            return ctx.skip(self.name, f"the loss {float(ctx.loss):.6g} is at or below "
                            f"loss_min = {self.loss_min:g}, where the inequality says nothing")
        gnorm = torch.sqrt(sum(g.double().pow(2).sum() for g in grads.values()))
        cs = lgi_constants(torch.tensor([gap], dtype=torch.float64), gnorm.reshape(1))
        self._mins = [min(a, b) for a, b in zip(self._mins, cs.tolist())]
        if self._gap0 is None:
            self._gap0 = gap
        fit = best_fit(self._gap0, self._mins, THETAS)
        dist2 = sum((w.double() - ctx.init_params[n].double()).pow(2).sum()
                    for n, w in ctx.params().items() if n in ctx.init_params)
        out: Measurement = {"lgi/c_pl": self._mins[0], "lgi/theta": fit.theta, "lgi/c": fit.c,
                            "lgi/distance": torch.as_tensor(dist2).sqrt(),
                            "lgi/ratio": gnorm / math.sqrt(gap)}
        if math.isfinite(fit.length_bound):  # infinite once a zero gradient was seen
            out["lgi/length_bound"] = fit.length_bound
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"gap0": self._gap0, "mins": list(self._mins)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._gap0 = state.get("gap0")
        self._mins = list(state.get("mins", [math.inf] * len(THETAS)))


PROBES.register("lojasiewicz", Lojasiewicz, ddp="replicated", papers=(44,),
                metrics=("lgi/*",), plot="curves", title="Lojasiewicz gradient inequality",
                summary="Lojasiewicz gradient-inequality constants along the run and the "
                        "path-length bound they imply")
