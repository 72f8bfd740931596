r"""Preconditioned conjugate gradients, counting iterations to a relative residual.

The Hestenes–Stiefel recurrence with a preconditioner :math:`M \approx A^{-1}` (SPD):

.. math::  r_0 = b - Ax_0,\ z_0 = Mr_0,\ p_0 = z_0;\quad
           \alpha_k = \frac{r_k^\top z_k}{p_k^\top A p_k},\
           x_{k+1} = x_k + \alpha_k p_k,\ r_{k+1} = r_k - \alpha_k A p_k,\
           z_{k+1} = M r_{k+1},\ p_{k+1} = z_{k+1} + \frac{r_{k+1}^\top z_{k+1}}{r_k^\top z_k} p_k,

stopped at the first ``k`` with :math:`\|r_k\|_2 \le \text{rtol}\,\|b\|_2` (the criterion of
``scipy.sparse.linalg.cg`` with ``atol = 0``; the tests check the iteration counts and the
solution against it). Written here rather than calling scipy because the learned solvers need
the per-iteration residual history and the wall time of the iterations alone.

References:
    Hestenes & Stiefel, "Methods of conjugate gradients for solving linear systems", 1952.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from trainlab.errors import check_range

log = logging.getLogger("trainlab")

Apply = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SolveResult:
    """What an iterative solve did.

    Attributes:
        x: the last iterate.
        iterations: iterations done (the count at convergence if ``converged``).
        residuals: relative residual norms ``||r_k|| / ||b||``, ``k = 0..iterations``.
        converged: whether ``rtol`` was reached within ``maxiter``.
        seconds: wall time of the iterations (setup of the preconditioner excluded).
    """

    x: np.ndarray
    iterations: int
    residuals: np.ndarray
    converged: bool
    seconds: float


def _matvec(A) -> Apply:
    return A if callable(A) and not hasattr(A, "shape") else (lambda v: A @ v)


def pcg(A, b: np.ndarray, M: Apply | None = None, *, rtol: float = 1e-8,
        maxiter: int | None = None, x0: np.ndarray | None = None) -> SolveResult:
    """Solve ``A x = b`` (``A`` SPD: a sparse/dense matrix or a matvec) by (preconditioned)
    conjugate gradients.

    Args:
        A: the SPD matrix or a function ``v -> A v``.
        b: right-hand side.
        M: the preconditioner ``r -> M r`` (SPD, approximating ``A^{-1}``); None: plain CG.
        rtol: stop when ``||b - A x|| <= rtol ||b||`` (recursively updated residual).
        maxiter: at most this many iterations (default ``10 n``).
        x0: initial guess (default zero).

    Returns:
        A :class:`SolveResult`; a run that does not converge is logged as a warning.
    """
    check_range("rtol", rtol, low=0.0, low_open=True, owner="pcg")
    b = np.asarray(b, dtype=np.float64)
    n = b.shape[0]
    maxiter = 10 * n if maxiter is None else int(check_range("maxiter", maxiter, low=1,
                                                               owner="pcg"))
    matvec = _matvec(A)
    precond = M if M is not None else (lambda v: v)
    bnorm = float(np.linalg.norm(b)) or 1.0
    start = time.perf_counter()
    x = np.zeros(n) if x0 is None else np.array(x0, dtype=np.float64)
    r = b - matvec(x) if x0 is not None else b.copy()
    history = [np.linalg.norm(r) / bnorm]
    k = 0
    if history[0] > rtol:
        z = precond(r)
        p = z.copy()
        rz = float(r @ z)
        while k < maxiter:
            k += 1
            Ap = matvec(p)
            alpha = rz / float(p @ Ap)
            x += alpha * p
            r -= alpha * Ap
            history.append(np.linalg.norm(r) / bnorm)
            if history[-1] <= rtol:
                break
            z = precond(r)
            rz_new = float(r @ z)
            p = z + (rz_new / rz) * p
            rz = rz_new
    seconds = time.perf_counter() - start
    converged = history[-1] <= rtol
    if not converged:
        log.warning("pcg: no convergence to rtol %.1e in %d iterations (reached %.2e)",
                    rtol, maxiter, history[-1])
    return SolveResult(x, k, np.asarray(history), converged, seconds)
