r"""The gradient-flow-solution sharpness probe: :func:`~trainlab.analyses.gradient_flow.
gfs_sharpness` from the current parameters (Kreisler, Nacson, Soudry & Carmon, ICML 2023;
papers.md row 36), warm-started from the previous measurement's eigenvector. The flow, the
integrator and the deviations from the paper are described in
:mod:`trainlab.analyses.gradient_flow`.
"""

from __future__ import annotations

from typing import Any

import torch

from trainlab.analyses.gradient_flow import (
    gfs_sharpness,
)
from trainlab.errors import check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.sharpness import eigen_metrics


class GFSSharpnessProbe(Probe):
    """``gfs/sharpness`` (top Hessian eigenvalue at the gradient-flow solution from the
    current parameters, on this step's batch), ``gfs/eos_ratio`` (its ``lr * s / 2``),
    ``gfs/loss`` and ``gfs/grad_norm`` at the solution, ``gfs/time``, ``gfs/grad_evals``
    and ``gfs/converged`` (of the flow); the eigenvalue's ``gfs/sharpness_residual`` and
    ``gfs/sharpness_converged`` (of Lanczos: an unconverged value is stored as
    ``gfs/sharpness_unconverged`` and gives no ``gfs/eos_ratio``).

    Deviations from the paper: those of :mod:`trainlab.analyses.gradient_flow`: the flow runs on
    this step's batch, not on the full training set as in the paper; a flow that does not reach
    ``grad_tol`` within ``max_evals`` is reported as not converged, with the sharpness where it
    stopped; under dropout the flow and the Hessian share one fixed draw of the masks. The top
    eigenvalue is a Lanczos estimate with its residual.

    Args:
        every: cadence (each measurement integrates a flow: up to ``max_evals`` gradients).
        grad_tol, max_evals: stopping rule of the flow (see :func:`gradient_flow`).
        max_iter: Lanczos' Krylov dimension cap at the solution (default None:
            :func:`~trainlab.curvature.lanczos`'s).
    """

    name = "gfs-sharpness"

    def __init__(self, every: int = 1, grad_tol: float = 1e-5, max_evals: int = 1000,
                 max_iter: int | None = None):
        super().__init__(every)
        if max_iter is not None:
            check_range("max_iter", max_iter, low=1, owner="gfs-sharpness")
        self.max_iter = max_iter
        check_range("grad_tol", grad_tol, low=0.0, low_open=True, owner="gfs-sharpness")
        check_range("max_evals", max_evals, low=4, owner="gfs-sharpness")
        self.grad_tol, self.max_evals = grad_tol, max_evals
        self._v: torch.Tensor | None = None

    def measure(self, ctx: ProbeContext) -> Measurement:
        res = gfs_sharpness(ctx.model, ctx.loss_fn, ctx.batch, grad_tol=self.grad_tol,
                            max_evals=self.max_evals, v0=self._v, generator=ctx.generator,
                            run_cache=ctx.run_cache, max_iter=self.max_iter)
        self._v = res.vector
        f = res.flow
        out = eigen_metrics("gfs/sharpness", res.eigen)
        out.update({"gfs/loss": f.loss, "gfs/grad_norm": f.grad_norm, "gfs/time": f.time,
                    "gfs/grad_evals": float(f.grad_evals), "gfs/converged": float(f.converged)})
        if ctx.lr is not None and "gfs/sharpness" in out:
            out["gfs/eos_ratio"] = ctx.lr * res.value / 2
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"v": self._v}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._v = state.get("v")


PROBES.register("gfs-sharpness", GFSSharpnessProbe, papers=(36,),
                metrics=("gfs/*",),
                summary="top Hessian eigenvalue at the gradient-flow solution from the "
                        "current parameters")
