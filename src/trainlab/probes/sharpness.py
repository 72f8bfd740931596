"""Sharpness (top Hessian eigenvalue) and the edge-of-stability ratio."""

from __future__ import annotations

from typing import Any

import torch

from trainlab.curvature import HessianOperator, lanczos
from trainlab.errors import check_range
from trainlab.log import warn_once
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


def step_hessian(ctx: ProbeContext) -> HessianOperator:
    """The Hessian of this step's batch loss, built once per step and shared by the curvature
    probes. Products use double backward (2-3x cheaper than ``torch.func`` on small CPU
    models) through a gradient graph built once per step (``retain_graph``: later products
    are one backward pass each); a model whose operators lack a double backward falls back
    to forward-over-reverse on the first failure."""

    def build() -> HessianOperator:
        op = HessianOperator(ctx.model, ctx.loss_fn, ctx.batch, method="double-backward",
                             retain_graph=True)
        try:
            op.matvec(torch.zeros(op.dim, dtype=op.dtype, device=op.device))
        except RuntimeError as exc:
            warn_once(f"hessian-fallback:{type(ctx.model).__name__}",
                      "%s has no double backward (%s); Hessian-vector products of the "
                      "curvature probes use forward-over-reverse torch.func (slower)",
                      type(ctx.model).__name__, str(exc).splitlines()[0])
            op = HessianOperator(ctx.model, ctx.loss_fn, ctx.batch, check_deterministic=False)
        return op

    return ctx.cached("hessian_operator", build)


class Sharpness(Probe):
    r"""Top eigenvalue :math:`\lambda_{max}` of the Hessian of the batch loss, by Lanczos on
    Hessian-vector products (forward-over-reverse ``torch.func``), warm-started from the
    previous measurement's eigenvector so that a slowly moving top eigenvector costs a few
    products per measurement.

    Also reports ``eos_ratio`` :math:`= \lambda_{max}\,\eta / 2`: gradient descent with
    learning rate :math:`\eta` is stable on a quadratic only while this is below 1; at the
    edge of stability it hovers at 1 ("Gradient descent on neural networks typically occurs at
    the edge of stability", Cohen et al. 2021; "A Loss Curvature Perspective on Training
    Instability in Deep Learning", Gilmer et al. 2022; papers.md rows 65 and 10). For
    adaptive optimizers, :func:`trainlab.curvature.preconditioned_sharpness` gives the
    threshold that applies to them.

    The Hessian operator (:func:`step_hessian`) is shared with the other curvature probes of
    the same step.

    Args:
        every: cadence.
        max_iter: Krylov dimension cap per measurement (default 20).
        tol: Lanczos residual tolerance relative to the eigenvalue (default 1e-2: the
            eigenvalue error is about the residual squared over the spectral gap, so about
            1e-4 relative for a well-separated top eigenvalue).
    """

    name = "sharpness"

    def __init__(self, every: int = 1, max_iter: int = 20, tol: float = 1e-2):
        super().__init__(every)
        check_range("max_iter", max_iter, low=1, owner="sharpness")
        check_range("tol", tol, low=0.0, low_open=True, owner="sharpness")
        self.max_iter, self.tol = max_iter, tol
        self._v: torch.Tensor | None = None

    def measure(self, ctx: ProbeContext) -> Measurement:
        op = step_hessian(ctx)
        v0 = self._v if self._v is not None and self._v.numel() == op.dim else None
        res = lanczos(op, k=1, tol=self.tol, max_iter=min(self.max_iter, op.dim), v0=v0,
                      generator=ctx.generator)
        value = float(res.values[0])
        self._v = res.vectors[:, 0].detach().clone()
        out: Measurement = {"sharpness": value, "sharpness_matvecs": float(res.matvecs)}
        if ctx.lr is not None:
            out["eos_ratio"] = value * ctx.lr / 2.0
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"v": self._v}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._v = state.get("v")


PROBES.register("sharpness", Sharpness, papers=(10, 65),
                metrics=("sharpness", "eos_ratio", "sharpness_matvecs"),
                plot="edge-of-stability", title="Sharpness and the edge of stability",
                summary="top Hessian eigenvalue by warm-started Lanczos, and lr*sharpness/2")
