r"""Hessian spectrum summary with the SGD stability bounds.

Top-``k`` eigenvalues by Lanczos (warm-started from the previous step's eigenvectors),
the trace by Hutch++ and the Frobenius norm by Hutchinson's estimator on :math:`H^2`, all
from :mod:`trainlab.curvature`. With the step's learning rate :math:`\eta` and batch size
:math:`B` it reports the stability ratios a linearly stable minimum keeps at or below 1:

- ``stability/gd`` :math:`= \eta\lambda_{max}/2` (gradient descent);
- ``stability/trace`` :math:`= \eta\,\mathrm{tr}H/2`, the SGD bound of "The Implicit
  Regularization of Dynamical Stability in SGD" (Wu & Su, ICML 2023; papers.md row 30);
- ``stability/frobenius`` :math:`= \eta\|H\|_F/\sqrt{B}`, the scaling of the Frobenius bound
  :math:`\|H\|_F \le O(\sqrt B/\eta)` of Wu, Wang & Su (NeurIPS 2022), which row 30 revisits
  (the bound holds up to a constant, so this ratio is a trend, not a threshold).

All quantities are of :func:`~trainlab.probes.sharpness.step_hessian`: the model in its own
mode, and under dropout the Hessian for one fixed draw of the masks.

The bounds are stated for global minima of the square loss; away from a minimum the ratios
describe how close training is to the stability edge. The exact criterion for small models is
in :mod:`trainlab.analyses.sgd_stability` (row 70).
"""

from __future__ import annotations

from typing import Any

import torch

from trainlab.curvature import frobenius_norm, hutchpp_trace, lanczos
from trainlab.errors import check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.sharpness import eigen_metrics, step_hessian


def top_hessian_eigen(ctx: ProbeContext, k: int, v0: torch.Tensor | None = None,
                      max_iter: int | None = None) -> Any:
    """Top-``k`` Hessian eigenpairs of this step's batch loss, shared between probes in the
    same step through ``ctx.cached`` (the first caller's ``max_iter``, default
    :func:`~trainlab.curvature.lanczos`'s, bounds the Krylov dimension)."""
    def solve() -> Any:
        op = step_hessian(ctx)
        kk = min(k, op.dim)
        cap = None if max_iter is None else min(max(max_iter, kk), op.dim)
        return lanczos(op, k=kk, v0=v0, generator=ctx.generator, tol=1e-4, max_iter=cap)

    return ctx.cached(f"hessian_top{k}", solve)


class HessianSpectrum(Probe):
    """``hessian/eig<i>`` (top ``k``, descending), ``hessian/trace`` (+ ``_stderr``),
    ``hessian/frobenius`` (+ ``_stderr``) and the ``stability/*`` ratios.

    Each eigenvalue comes with ``hessian/eig<i>_residual`` and ``hessian/eig<i>_converged``;
    one that did not converge is stored as ``hessian/eig<i>_unconverged``
    (:func:`~trainlab.probes.sharpness.eigen_metrics`), and ``stability/gd`` needs a
    converged top eigenvalue.

    Deviations from the papers: the bounds are stated at global minima of the square loss and are
    evaluated here at every measured step, on this step's batch Hessian; the trace and the Frobenius
    norm are stochastic estimates (Hutch++ and Hutchinson, with standard errors) and the eigenvalues
    Lanczos estimates; the Frobenius ratio drops the bound's unknown constant (a trend, see above);
    row 70's exact criterion is not evaluated here (see :mod:`trainlab.analyses.sgd_stability`). The
    papers' constants were not re-read for this paragraph.

    Args:
        every: cadence.
        k: eigenvalues (default 5).
        trace_matvecs: Hutch++ products (default 99); ``frobenius_matvecs`` likewise (50).
        max_iter: Lanczos' Krylov dimension cap (default None: :func:`~trainlab.curvature.
            lanczos`'s ``min(dim, max(100, 20 k))``).
    """

    name = "hessian-spectrum"

    def __init__(self, every: int = 1, k: int = 5, trace_matvecs: int = 99,
                 frobenius_matvecs: int = 50, max_iter: int | None = None):
        super().__init__(every)
        check_range("k", k, low=1, owner="hessian-spectrum")
        check_range("trace_matvecs", trace_matvecs, low=3, owner="hessian-spectrum")
        check_range("frobenius_matvecs", frobenius_matvecs, low=2, owner="hessian-spectrum")
        if max_iter is not None:
            check_range("max_iter", max_iter, low=1, owner="hessian-spectrum")
        self.k, self.trace_matvecs, self.frobenius_matvecs = k, trace_matvecs, frobenius_matvecs
        self.max_iter = max_iter
        self._v: torch.Tensor | None = None

    def measure(self, ctx: ProbeContext) -> Measurement:
        eig = top_hessian_eigen(ctx, self.k, self._v, self.max_iter)
        self._v = eig.vectors.detach()
        op = ctx.cache["hessian_operator"]
        tr = hutchpp_trace(op, num_matvecs=self.trace_matvecs, generator=ctx.generator)
        fro = frobenius_norm(op, num_matvecs=self.frobenius_matvecs, generator=ctx.generator)
        out: Measurement = {}
        for i in range(len(eig.values)):
            out.update(eigen_metrics(f"hessian/eig{i}", eig, i))
        out.update({"hessian/trace": tr.value, "hessian/trace_stderr": tr.stderr,
                    "hessian/frobenius": fro.value, "hessian/frobenius_stderr": fro.stderr})
        if ctx.lr is not None:
            b = ctx.examples()  # of the global batch under data-parallel training
            if bool(eig.converged[0]):
                out["stability/gd"] = ctx.lr * eig.values[0] / 2
            out["stability/trace"] = ctx.lr * tr.value / 2
            out["stability/frobenius"] = ctx.lr * fro.value / b ** 0.5
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"v": self._v}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._v = state.get("v")


PROBES.register("hessian-spectrum", HessianSpectrum, ddp="reduced", papers=(30, 70),
                metrics=("hessian/*", "stability/*"), plot="curves", title="Hessian spectrum",
                summary="top-k Hessian eigenvalues, trace, Frobenius norm, SGD stability ratios")
