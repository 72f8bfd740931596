"""Top eigenvalue of a symmetric operator by power iteration (with a shift for the sign)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from trainlab.curvature.solvers.results import EigenResult
from trainlab.errors import NotFiniteError, check_range


def _power(matvec: Callable[[torch.Tensor], torch.Tensor], v: torch.Tensor, shift: float,
           max_iter: int, tol: float) -> tuple[float, torch.Tensor, float, int, bool]:
    """Power iteration on ``A - shift I``: (eigenvalue of ``A``, vector, residual, iterations,
    converged). The residual is ``||A u - value u||`` for the iterate ``u`` whose Rayleigh
    quotient is the value (no extra product: ``w - (value - shift) u`` with ``w`` the last
    product)."""
    v = v / v.norm()
    lam = float("nan")
    for it in range(1, max_iter + 1):
        w = matvec(v) - shift * v
        new = torch.dot(v, w).item()
        residual = (w - new * v).norm().item()
        if not (math.isfinite(new) and math.isfinite(residual)):
            raise NotFiniteError(
                f"power iteration: HVP not finite (the operator's product {it} has NaN or Inf "
                "entries or overflows, e.g. on a diverging run): there is no eigenvalue to "
                "report")
        norm = w.norm()
        if norm == 0:
            return shift, v, residual, it, True
        v_next = w / norm
        if abs(new - lam) <= tol * max(abs(new), 1e-30):
            return new + shift, v_next, residual, it, True
        lam, v = new, v_next
    return lam + shift, v, residual, max_iter, False


def top_eigenvalue(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    *,
    max_iter: int = 100,
    tol: float = 1e-4,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> EigenResult:
    """Largest *algebraic* eigenvalue of a symmetric operator by power iteration.

    Plain power iteration finds the eigenvalue of largest magnitude; when that one is
    negative, a second run on ``A - lambda_neg I`` (whose dominant eigenvalue is then the top
    algebraic one, shifted) recovers the top eigenvalue. Convergence: relative change of the
    Rayleigh quotient below ``tol``.

    Args:
        matvec: ``v -> A v`` on flat vectors.
        dim: the operator's size.
        max_iter: iterations per run, >= 1.
        tol: relative tolerance, > 0.
        v0: starting vector (e.g. last step's eigenvector, a warm start).
        generator: randomness for the random start when ``v0`` is None.
        dtype: dtype of the random start.

    Returns:
        The common :class:`~trainlab.curvature.solvers.results.EigenResult` with one pair:
        ``values[0]`` the eigenvalue, ``vectors[:, 0]`` the last (unit) iterate, ``residuals[0]``
        the residual norm of the iterate whose Rayleigh quotient is ``values[0]``,
        ``converged[0]`` whether the tolerance was met, ``matvecs == iterations`` the operator
        products of both runs.
    """
    check_range("max_iter", max_iter, low=1, owner="top_eigenvalue")
    check_range("tol", tol, low=0.0, low_open=True, owner="top_eigenvalue")
    if v0 is None:
        v0 = torch.randn(dim, generator=generator, dtype=dtype)
    lam, v, res, n, ok = _power(matvec, v0.clone(), 0.0, max_iter, tol)
    if lam < 0:
        start = torch.randn(dim, generator=generator, dtype=v0.dtype)
        lam2, v2, res, n2, ok = _power(matvec, start, lam, max_iter, tol)
        lam, v, n = lam2, v2, n + n2
    dtype = v.dtype
    return EigenResult(values=torch.tensor([lam], dtype=dtype), vectors=v.reshape(-1, 1),
                       residuals=torch.tensor([res], dtype=dtype), matvecs=n,
                       converged=torch.tensor([ok]), iterations=n)
