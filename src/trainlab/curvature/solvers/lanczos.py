"""Lanczos with full reorthogonalization: extreme eigenpairs of a symmetric operator."""

from __future__ import annotations

import math

import torch

from trainlab.curvature.operators._linear import LinearOperator, as_operator
from trainlab.curvature.solvers.results import EigenResult
from trainlab.errors import ConfigError, check_range

WHICH = ("LA", "SA", "LM")


def start_vector(dim: int, v0: torch.Tensor | None, generator: torch.Generator | None,
                 dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A unit start vector: ``v0`` (the sum of its columns when it is a matrix of previous
    eigenvectors), or a standard normal draw from ``generator``."""
    if v0 is None:
        v = torch.randn(dim, generator=generator, dtype=dtype, device=device)
    else:
        v = v0.detach().to(dtype=dtype, device=device)
        v = v.sum(dim=1) if v.ndim == 2 else v
        if v.shape != (dim,):
            raise ConfigError(f"v0 must have shape ({dim},) or ({dim}, j); got "
                              f"{tuple(v0.shape)}.")
    norm = v.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise ConfigError("v0 must be a finite, nonzero vector.")
    return v / norm


def _orthogonalize(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    for _ in range(2):  # classical Gram-Schmidt twice ("twice is enough")
        w = w - basis @ (basis.T @ w)
    return w


def _select(theta: torch.Tensor, k: int, which: str) -> torch.Tensor:
    if which == "LA":
        return torch.argsort(theta, descending=True)[:k]
    if which == "SA":
        return torch.argsort(theta)[:k]
    return torch.argsort(theta.abs(), descending=True)[:k]


def lanczos(
    op: LinearOperator | torch.Tensor,
    *,
    k: int = 1,
    which: str = "LA",
    tol: float = 1e-6,
    max_iter: int | None = None,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> EigenResult:
    r"""The ``k`` extreme eigenpairs of a symmetric operator by the Lanczos method with full
    reorthogonalization ("An iteration method for the solution of the eigenvalue problem of
    linear differential and integral operators", Lanczos 1950; Golub & Van Loan, Matrix
    Computations, section 10.1).

    Builds an orthonormal Krylov basis :math:`Q_m` of :math:`\{v_0, Av_0, \dots\}` one
    product per step, re-orthogonalizing every new vector against the whole basis, and takes
    the Ritz pairs :math:`(\theta_i, Q_m s_i)` of the tridiagonal :math:`T_m = Q_m^\top A Q_m`.
    The residual of a Ritz pair is :math:`|\beta_m s_{m,i}|`, which costs nothing; the
    eigenvalue error is at most residual / (distance to the rest of the spectrum) and
    typically residual² / gap. If the basis spans an invariant subspace before ``k`` pairs
    converge (a breakdown), the iteration continues from a fresh random vector orthogonal to
    the basis.

    Args:
        op: a :class:`LinearOperator` (e.g. :class:`~trainlab.curvature.HessianOperator`) or
            a dense symmetric tensor.
        k: number of eigenpairs, ``1 <= k <= dim``.
        which: ``"LA"`` largest algebraic (top-k), ``"SA"`` smallest algebraic (bottom-k),
            ``"LM"`` largest magnitude.
        tol: a pair converges when its residual is at most
            ``tol * max(|theta|, sqrt(eps) * |A|)``; ``tol > 0``.
        max_iter: maximum Krylov dimension, ``k <= max_iter <= dim``
            (default ``min(dim, max(100, 20 k))``); it also bounds the memory,
            ``max_iter`` vectors of size ``dim``.
        v0: start vector, or a ``(dim, j)`` matrix of previous eigenvectors (their sum is
            used): the warm start inside a training loop.
        generator: randomness for the start (when ``v0`` is None) and after breakdowns.

    Returns:
        :class:`EigenResult` with values, vectors, residuals, matvecs and converged flags.

    Example:
        >>> import torch
        >>> A = torch.diag(torch.arange(1.0, 11.0, dtype=torch.float64))
        >>> res = lanczos(A, k=2, generator=torch.Generator().manual_seed(0))
        >>> [round(v, 6) for v in res.values.tolist()], res.all_converged
        ([10.0, 9.0], True)
    """
    op = as_operator(op)
    n = op.dim
    check_range("k", k, low=1, high=n, owner="lanczos")
    if which not in WHICH:
        raise ConfigError(f"The 'which' parameter of lanczos must be one of {WHICH}; got "
                          f"{which!r}.")
    check_range("tol", tol, low=0.0, low_open=True, owner="lanczos")
    max_iter = min(n, max(100, 20 * k)) if max_iter is None else max_iter
    check_range("max_iter", max_iter, low=k, high=n, owner="lanczos")

    dtype, device = op.dtype, op.device
    eps = torch.finfo(dtype).eps
    basis = torch.empty(n, max_iter, dtype=dtype, device=device)
    alpha: list[float] = []
    beta: list[float] = []  # beta[j] couples basis vectors j and j+1 (0 after a restart)
    q = start_vector(n, v0, generator, dtype, device)
    anorm = 0.0
    theta = s = res = None
    b = 0.0
    m = 0
    for j in range(max_iter):
        basis[:, j] = q
        w = op.matvec(q)
        a = torch.dot(q, w).item()
        w = _orthogonalize(w, basis[:, :j + 1])
        b = w.norm().item()
        alpha.append(a)
        anorm = max(anorm, abs(a) + b + (beta[-1] if beta else 0.0))
        m = j + 1
        if m >= k and (m < 100 or m % 10 == 0 or m == max_iter):
            t = torch.diag(torch.tensor(alpha, dtype=torch.float64))
            if beta:
                off = torch.tensor(beta, dtype=torch.float64)
                t += torch.diag(off, 1) + torch.diag(off, -1)
            theta, s = torch.linalg.eigh(t)
            res = b * s[-1].abs()
            idx = _select(theta, k, which)
            floor = math.sqrt(eps) * anorm
            if bool((res[idx] <= tol * torch.clamp(theta[idx].abs(), min=floor)).all()):
                break
        if m == max_iter:
            break
        if b <= 100 * eps * max(anorm, 1e-300):  # invariant subspace: restart orthogonally
            r = torch.randn(n, generator=generator, dtype=dtype, device=device)
            r = _orthogonalize(r, basis[:, :m])
            q, b = r / r.norm(), 0.0
        else:
            q = w / b
        beta.append(b)
    if theta is None or len(theta) != m:  # last step was not checked
        t = torch.diag(torch.tensor(alpha, dtype=torch.float64))
        if beta[:m - 1]:
            off = torch.tensor(beta[:m - 1], dtype=torch.float64)
            t += torch.diag(off, 1) + torch.diag(off, -1)
        theta, s = torch.linalg.eigh(t)
        res = b * s[-1].abs()
    idx = _select(theta, k, which)
    floor = math.sqrt(eps) * anorm
    converged = res[idx] <= tol * torch.clamp(theta[idx].abs(), min=floor)
    vectors = basis[:, :m] @ s[:, idx].to(dtype)
    return EigenResult(values=theta[idx].to(dtype), vectors=vectors,
                       residuals=res[idx].to(dtype), matvecs=m, converged=converged,
                       iterations=m)
