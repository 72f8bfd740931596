"""Lanczos with full reorthogonalization: extreme eigenpairs of a symmetric operator."""

from __future__ import annotations

import math

import torch

from trainlab.curvature.operators._linear import LinearOperator, as_operator
from trainlab.curvature.solvers.results import EigenResult
from trainlab.errors import ConfigError, NotFiniteError, check_choice, check_range

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
    for _ in range(2):  # classical Gram-Schmidt twice ("twice is enough"); rows = vectors
        w = w - basis.T @ (basis @ w)
    return w


def _select(theta: torch.Tensor, k: int, which: str) -> torch.Tensor:
    if which == "LA":
        return torch.argsort(theta, descending=True)[:k]
    if which == "SA":
        return torch.argsort(theta)[:k]
    return torch.argsort(theta.abs(), descending=True)[:k]


class _Tridiagonal:
    """The Lanczos recurrence with full reorthogonalization, one step per :meth:`step`.

    Keeps the orthonormal basis as contiguous rows ``basis[:m]`` and the tridiagonal
    ``T_m`` (``alpha`` on the diagonal, ``beta`` off it, 0 where the iteration restarted
    after a breakdown).
    """

    def __init__(self, op: LinearOperator, q: torch.Tensor, max_steps: int):
        self.op, self.q = op, q
        self.basis = torch.empty(max_steps, op.dim, dtype=op.dtype, device=op.device)
        self.alpha: list[float] = []
        self.beta: list[float] = []
        self.b = 0.0  # norm of the current residual vector (the next beta)
        self.anorm = 0.0  # running estimate of |A|
        self.m = 0
        self.eps = torch.finfo(op.dtype).eps

    def step(self) -> torch.Tensor:
        """One product and one new basis vector; returns the unnormalized residual."""
        j = self.m
        self.basis[j] = self.q
        w = self.op.matvec(self.q)
        a = torch.dot(self.q, w).item()
        w = _orthogonalize(w, self.basis[:j + 1])
        self.b = w.norm().item()
        if not (math.isfinite(a) and math.isfinite(self.b)):
            # NaN/Inf would reach eigh: a LinAlgError about convergence, or NaN Ritz values
            raise NotFiniteError(
                f"lanczos: HVP not finite (the operator's product {j + 1} has NaN or Inf "
                "entries or overflows, e.g. on a diverging run): there is no eigenvalue to "
                "report")
        self.alpha.append(a)
        self.anorm = max(self.anorm, abs(a) + self.b + (self.beta[-1] if self.beta else 0.0))
        self.m = j + 1
        return w

    def broke_down(self) -> bool:
        """The basis spans an invariant subspace (up to rounding)."""
        return self.b <= 100 * self.eps * max(self.anorm, 1e-300)

    def advance(self, w: torch.Tensor, generator: torch.Generator | None) -> None:
        """Next basis vector: ``w / b``, or a random vector orthogonal to the basis after a
        breakdown (with a zero coupling)."""
        if self.broke_down():
            r = torch.randn(self.op.dim, generator=generator, dtype=self.op.dtype,
                            device=self.op.device)
            r = _orthogonalize(r, self.basis[:self.m])
            self.q, self.b = r / r.norm(), 0.0
        else:
            self.q = w / self.b
        self.beta.append(self.b)

    def ritz(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eigen-decomposition of ``T_m`` in float64: (values ascending, vectors)."""
        t = torch.diag(torch.tensor(self.alpha, dtype=torch.float64))
        if self.m > 1:
            off = torch.tensor(self.beta[:self.m - 1], dtype=torch.float64)
            t += torch.diag(off, 1) + torch.diag(off, -1)
        return torch.linalg.eigh(t)


def lanczos(
    op: LinearOperator | torch.Tensor,
    *,
    k: int = 1,
    which: str = "LA",
    tol: float = 1e-6,
    max_iter: int | None = None,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    eig_tol: float | None = None,
    gap_tol: float | None = None,
    min_iter: int = 1,
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
        eig_tol: also count a pair as converged when its *eigenvalue* error bound
            ``residual^2 / gap`` is at most ``eig_tol * max(|theta|, sqrt(eps) |A|)``, with
            ``gap`` the distance to the nearest other Ritz value (the gap theorem, Parlett,
            "The Symmetric Eigenvalue Problem", 11.7; Ritz values stand in for the unknown
            spectrum, so it is an estimate, reliable once the neighbouring Ritz value has
            settled). Eigenvalues converge about twice as fast as vectors, so for a target
            accuracy of the eigenvalue alone this stops several products earlier than
            ``tol``. ``None`` (default): residuals only.
        gap_tol: a further condition (all other tests must still pass): a pair counts as
            converged only when its residual is at most ``gap_tol`` times the distance to
            the nearest other Ritz value, so that at least two Ritz values exist (Krylov
            dimension >= 2) and, by the Davis-Kahan sin-theta bound with Ritz values
            standing in for the spectrum, the Ritz vector is within angle ``~gap_tol`` of
            an eigenvector and the eigenvalue error is about ``gap_tol * residual``.
            ``None`` (default): no gap condition.
        min_iter: no pair counts as converged before the Krylov dimension reaches
            ``min(min_iter, max_iter)`` (default 1). A small residual only proves that a
            Ritz value is close to *some* eigenvalue; a larger Krylov space from a start with
            a random component is what makes it likely to be the extreme one.

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
    check_choice("which", which, WHICH, owner="lanczos")
    check_range("tol", tol, low=0.0, low_open=True, owner="lanczos")
    if eig_tol is not None:
        check_range("eig_tol", eig_tol, low=0.0, low_open=True, owner="lanczos")
    if gap_tol is not None:
        check_range("gap_tol", gap_tol, low=0.0, low_open=True, owner="lanczos")
    max_iter = min(n, max(100, 20 * k)) if max_iter is None else max_iter
    check_range("max_iter", max_iter, low=k, high=n, owner="lanczos")
    check_range("min_iter", min_iter, low=1, owner="lanczos")
    min_iter = min(min_iter, max_iter)

    krylov = _Tridiagonal(op, start_vector(n, v0, generator, op.dtype, op.device), max_iter)
    floor = math.sqrt(torch.finfo(op.dtype).eps)

    def converged(theta: torch.Tensor, res: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        scale = torch.clamp(theta[idx].abs(), min=floor * krylov.anorm)
        ok = res[idx] <= tol * scale
        dist = (theta[idx, None] - theta[None, :]).abs()
        dist[torch.arange(len(idx)), idx] = float("inf")
        gap = dist.min(dim=1).values
        if eig_tol is not None and theta.numel() > 1:
            ok |= res[idx] ** 2 <= eig_tol * scale * gap
        if gap_tol is not None and n > 1:  # one Ritz value alone has no gap: not converged
            ok &= (res[idx] <= gap_tol * gap) & (theta.numel() > 1)
        return ok & (krylov.m >= min_iter)

    ok = None  # the last convergence test, when it was made at the final Krylov dimension
    while True:
        w = krylov.step()
        m = krylov.m
        if m == max_iter:
            break
        if m >= max(k, min_iter) and (m < 100 or m % 10 == 0):
            theta, s = krylov.ritz()
            res, idx = krylov.b * s[-1].abs(), _select(theta, k, which)
            ok = converged(theta, res, idx)
            if bool(ok.all()):
                break
        krylov.advance(w, generator)
    if m == max_iter:  # stopped by the cap: Ritz pairs of the final basis, tested once
        theta, s = krylov.ritz()
        res, idx = krylov.b * s[-1].abs(), _select(theta, k, which)
        ok = converged(theta, res, idx)
    vectors = krylov.basis[:m].T @ s[:, idx].to(op.dtype)
    return EigenResult(values=theta[idx].to(op.dtype), vectors=vectors,
                       residuals=res[idx].to(op.dtype), matvecs=m,
                       converged=ok, iterations=m)
