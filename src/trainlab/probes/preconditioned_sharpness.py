"""Optimizer-aware sharpness: the edge of stability that applies to the optimizer in use."""

from __future__ import annotations

from typing import Any

import torch

from trainlab.curvature import preconditioned_sharpness
from trainlab.curvature.optimizer_sharpness import preconditioner_kind
from trainlab.errors import ConfigError, check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.sharpness import eigen_metrics, step_hessian


class PreconditionedSharpness(Probe):
    r""":math:`\lambda_{max}(P^{-1}H)` for the preconditioner :math:`P` the optimizer actually
    applies (Adam/AdamW second moments with bias correction and eps, RMSprop, or the identity
    for SGD), its stability threshold, and their ratio.

    Plain sharpness against :math:`2/\eta` says nothing about Adam: an adaptive method is
    at its edge of stability when :math:`\lambda_{max}(P^{-1}H)` reaches
    :math:`(2+2\beta_1)/((1-\beta_1)\eta)` (38/lr at beta1 = 0.9; "Adaptive Gradient Methods at
    the Edge of Stability", Cohen et al. 2022), the counterpart of 2/lr for gradient descent
    (papers.md rows 10 and 65). See
    :func:`trainlab.curvature.optimizer_preconditioner` for each optimizer's ``P`` and
    threshold. Warm-started Lanczos on the step's shared Hessian.

    Reports ``precond_sharpness``, ``precond_threshold`` and ``precond_eos_ratio`` (1 at the
    edge), with ``precond_sharpness_residual`` and ``precond_sharpness_converged``; a value
    that did not converge is stored as ``precond_sharpness_unconverged`` and gives no ratio
    (:func:`~trainlab.probes.sharpness.eigen_metrics`). Nothing is measured before the
    optimizer has state (Adam before its first step); for an optimizer whose preconditioner
    is not known nothing is measured and the reason is recorded (``ctx.skip``).

    Deviations from the papers: rows 10 and 65 concern the sharpness of gradient descent; the
    preconditioned quantity and its threshold come from Cohen et al. 2022 (cited above, not a
    papers.md row). The preconditioner is the optimizer's state at the measurement, held fixed; the
    Hessian is that of this step's batch loss and the eigenvalue a Lanczos estimate to ``tol``.
    Cohen et al.'s text was not re-read for this paragraph.

    Args:
        every: cadence.
        max_iter: Krylov dimension cap (default 100).
        tol: Lanczos relative residual tolerance (default 1e-2).
    """

    name = "preconditioned-sharpness"

    def __init__(self, every: int = 1, max_iter: int = 100, tol: float = 1e-2):
        super().__init__(every)
        check_range("max_iter", max_iter, low=1, owner=self.name)
        check_range("tol", tol, low=0.0, low_open=True, owner=self.name)
        self.max_iter, self.tol = max_iter, tol
        self._v: torch.Tensor | None = None

    def measure(self, ctx: ProbeContext) -> Measurement:
        if ctx.optimizer is None:
            return ctx.skip(self.name, "no optimizer was given to the monitor")
        try:
            preconditioner_kind(ctx.optimizer)
        except ConfigError as exc:
            return ctx.skip(self.name, str(exc))
        op = step_hessian(ctx)
        v0 = self._v if self._v is not None and self._v.numel() == op.dim else None
        try:
            res = preconditioned_sharpness(op, ctx.optimizer, tol=self.tol,
                                           max_iter=min(self.max_iter, op.dim), v0=v0,
                                           generator=ctx.generator)
        except ConfigError as exc:  # no optimizer state yet, or an optimizer without a known P
            if not ctx.optimizer.state:  # before the first update: nothing to read yet
                return {}
            return ctx.skip(self.name, str(exc))
        self._v = res.eigen.vectors[:, 0].detach().clone()
        out = eigen_metrics("precond_sharpness", res.eigen)
        out["precond_threshold"] = res.threshold
        if "precond_sharpness" in out:
            out["precond_eos_ratio"] = res.ratio
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"v": self._v}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._v = state.get("v")


PROBES.register("preconditioned-sharpness", PreconditionedSharpness, ddp="reduced", papers=(10, 65),
                metrics=("precond_sharpness", "precond_threshold", "precond_eos_ratio",
                         "precond_sharpness_*"),
                plot="log-curves", title="Optimizer-aware sharpness",
                compare=("precond_sharpness", "precond_eos_ratio"),
                summary="lambda_max(P^-1 H) for the optimizer's own preconditioner, vs its "
                        "threshold")
