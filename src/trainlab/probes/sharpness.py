"""Sharpness (top Hessian eigenvalue) and the edge-of-stability ratio."""

from __future__ import annotations

from typing import Any

import torch

from trainlab.curvature import make_hvp, top_eigenvalue
from trainlab.errors import check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


class Sharpness(Probe):
    r"""Top eigenvalue :math:`\lambda_{max}` of the Hessian of the batch loss, by power
    iteration on Hessian-vector products (forward-over-reverse ``torch.func``), warm-started
    from the previous measurement's eigenvector.

    Also reports ``eos_ratio`` :math:`= \lambda_{max}\,\eta / 2`: gradient descent with
    learning rate :math:`\eta` is stable on a quadratic only while this is below 1; at the
    edge of stability it hovers at 1 ("Gradient descent on neural networks typically occurs at
    the edge of stability", Cohen et al. 2021; papers.md rows 10 and 65).

    Args:
        every: cadence.
        max_iter: power iterations per measurement (default 20, enough with a warm start).
        tol: relative tolerance on the Rayleigh quotient (default 1e-3).
    """

    name = "sharpness"

    def __init__(self, every: int = 1, max_iter: int = 20, tol: float = 1e-3):
        super().__init__(every)
        check_range("max_iter", max_iter, low=1, owner="sharpness")
        self.max_iter, self.tol = max_iter, tol
        self._v: torch.Tensor | None = None

    def measure(self, ctx: ProbeContext) -> Measurement:
        x, y = ctx.batch
        hvp, dim = ctx.cached("hvp", lambda: make_hvp(ctx.model, ctx.loss_fn, x, y))
        dtype = next(iter(ctx.params().values())).dtype
        res = top_eigenvalue(hvp, dim, max_iter=self.max_iter, tol=self.tol, v0=self._v,
                             generator=ctx.generator, dtype=dtype)
        self._v = res.vector.detach()
        out: Measurement = {"sharpness": res.value, "sharpness_matvecs": float(res.matvecs)}
        if ctx.lr is not None:
            out["eos_ratio"] = res.value * ctx.lr / 2.0
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"v": self._v}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._v = state.get("v")


PROBES.register("sharpness", Sharpness, papers=(10, 65),
                summary="top Hessian eigenvalue by HVP power iteration, and lr*sharpness/2")
