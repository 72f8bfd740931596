r"""Top eigenpair from a warm block: Rayleigh-Ritz on the previous top-b Ritz vectors, then
expansion by the top Ritz pair's residual, stopped by an estimate of the eigenvalue error."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from trainlab.curvature.operators._linear import LinearOperator, as_operator
from trainlab.curvature.solvers.results import EigenResult
from trainlab.errors import ConfigError, NotFiniteError, check_range


@dataclass(frozen=True)
class RitzStep:
    """The Rayleigh-Ritz state after one more product.

    Attributes:
        values: ``(m,)`` Ritz values, descending (float64).
        coeffs: ``(m, m)`` their coefficient vectors on ``basis`` (columns, operator dtype).
        basis: ``(m, dim)`` orthonormal basis of the search space (rows).
        products: ``(m, dim)`` the operator times each basis row.
        block_done: every start column is in (or was skipped as dependent).
        top_residuals: ``(dim, min(m, 2))`` residual vectors :math:`Hy_i - \theta_i y_i` of
            the top two Ritz pairs (the first is the next direction of the expansion).
    """

    values: torch.Tensor
    coeffs: torch.Tensor
    basis: torch.Tensor
    products: torch.Tensor
    block_done: bool
    top_residuals: torch.Tensor

    def vectors(self, k: int) -> torch.Tensor:
        """The top ``k`` Ritz vectors, ``(dim, k)`` columns."""
        return self.basis.T @ self.coeffs[:, :k]

    def residuals(self, k: int) -> torch.Tensor:
        r"""Residual norms :math:`\|H y_i - \theta_i y_i\|` of the top ``k`` Ritz pairs (exact
        up to rounding: no product is needed, the products of the basis are kept)."""
        if k <= self.top_residuals.shape[1]:
            return self.top_residuals[:, :k].norm(dim=0)
        s = self.coeffs[:, :k]
        theta = self.values[:k].to(s.dtype)
        return (self.products.T @ s - (self.basis.T @ s) * theta).norm(dim=0)


def ritz_expansion(op: LinearOperator, start: torch.Tensor, max_iter: int
                   ) -> Iterator[RitzStep]:
    r"""Rayleigh-Ritz on a growing search space, one product per step: first the columns of
    ``start`` (the warm block, one product each), then, each step, the residual
    :math:`r = Hy - \theta y` of the current top Ritz pair :math:`(\theta, y)`, orthogonalized
    against the basis (classical Gram-Schmidt, a second pass when the first cancels
    more than 30% of the norm: Kahan's "twice is enough"). This is Davidson's expansion with no
    preconditioner; every new direction lies in the block Krylov space of ``start``, and
    from a single start vector the search space is that vector's Lanczos (Krylov) space.

    Yields a :class:`RitzStep` after each product, at most ``max_iter``; stops early when
    the top Ritz pair is exact to rounding (its residual is below ``100 eps |theta|``: the
    space holds an eigenvector) or when no new direction is left. A start column already in
    the span of the previous ones is skipped without a product. The basis, its products
    (``max_iter`` rows each, allocated once, as in :func:`~trainlab.curvature.lanczos`) and
    the projected matrix grow in place: one product, two passes of Gram-Schmidt and one
    row of the projected matrix per step.

    Raises:
        NotFiniteError: a product has NaN or Inf entries.
    """
    basis = torch.empty(max_iter, op.dim, dtype=op.dtype, device=op.device)
    products = torch.empty_like(basis)
    t = torch.zeros(max_iter, max_iter, dtype=torch.float64)
    pending = list(start.detach().to(dtype=op.dtype, device=op.device).T)
    step: RitzStep | None = None
    eps = torch.finfo(op.dtype).eps
    m = 0
    while m < max_iter:
        if pending:
            v = pending.pop(0)
        elif step is None:
            return
        else:
            v = step.top_residuals[:, 0]
            if v.norm() <= 100 * eps * abs(step.values[0].item()):
                return  # the top Ritz pair is an eigenpair to rounding
        before = v.norm()
        v = v - (basis[:m] @ v) @ basis[:m]
        if v.norm() < 0.7 * before:  # cancellation: once more ("twice is enough")
            v = v - (basis[:m] @ v) @ basis[:m]
        if not v.norm() > 1e-6 * before:  # already in the span (or zero)
            if pending:
                continue
            return
        v = v / v.norm()
        hv = op.matvec(v)
        basis[m], products[m] = v, hv
        row = (basis[:m + 1] @ hv).double()  # <q_i, H v>, i <= m (H symmetric)
        if not bool(torch.isfinite(row).all()):  # a NaN/Inf entry of hv reaches every dot
            raise NotFiniteError(
                f"block warm start: HVP not finite (the operator's product {m + 1} has NaN "
                "or Inf entries, e.g. on a diverging run): there is no eigenvalue to report")
        t[m, :m + 1], t[:m + 1, m] = row, row
        m += 1
        values, coeffs = torch.linalg.eigh(t[:m, :m])
        values, coeffs = values.flip(0), coeffs.flip(1).to(op.dtype)
        top = coeffs[:, :2].T  # rows: row-major products with the (m, dim) buffers
        residuals = top @ products[:m] - values[:2, None].to(op.dtype) * (top @ basis[:m])
        step = RitzStep(values, coeffs, basis[:m], products[:m], not pending, residuals.T)
        yield step


def top_error_estimate(values: torch.Tensor, residuals: torch.Tensor) -> float:
    r"""Estimated error of the top Ritz value :math:`\theta_1` as an estimate of
    :math:`\lambda_1`, relative to :math:`|\theta_1|`.

    Two facts about a Ritz pair with residual :math:`r_1`: an eigenvalue lies within
    :math:`r_1` of :math:`\theta_1` (exact), and :math:`\theta_1 \le \lambda_1` (a
    Rayleigh quotient). When the top pair is resolved from the second, the Kato-Temple
    bound :math:`\lambda_1 - \theta_1 \le r_1^2 / (\theta_1 - \mu)` for any
    :math:`\mu \ge \lambda_2` below :math:`\theta_1` is the sharper one; it is taken with
    :math:`\mu = \theta_2 + r_2` (an eigenvalue lies within :math:`r_2` of the second Ritz
    value, and this takes it to be :math:`\lambda_2`). So the estimate is
    :math:`\min(r_1, r_1^2 / (\theta_1 - \theta_2 - r_2)) / |\theta_1|`, or
    :math:`r_1 / |\theta_1|` when :math:`\theta_2 + r_2 \ge \theta_1` or there is one Ritz
    value. An *estimate*, not a bound on the distance to :math:`\lambda_1`: both terms
    assume that no eigenvalue above :math:`\theta_1 + r_1`, far from the search space, was
    missed (no Krylov method can rule that out without more products); ``inf`` when
    :math:`\theta_1 = 0`."""
    t1, r1 = float(values[0]), float(residuals[0])
    if t1 == 0:
        return math.inf
    bound = r1
    if values.numel() > 1:
        gap = t1 - (float(values[1]) + float(residuals[1]))
        if gap > 0:
            bound = min(r1, r1 * r1 / gap)
    return bound / abs(t1)


def block_warm_top(op: LinearOperator | torch.Tensor, start: torch.Tensor, *,
                   eig_tol: float = 1e-3, max_iter: int | None = None, min_iter: int = 1
                   ) -> tuple[EigenResult, float]:
    r"""The top eigenvalue of a symmetric operator from a warm block of ``b`` vectors (e.g.
    the previous measurement's top-b Ritz vectors): :func:`ritz_expansion` until the
    estimated relative error of the top Ritz value (:func:`top_error_estimate`) is at most
    ``eig_tol``, checked after every product once the whole block is in (the check costs no
    product).

    Why a block: inside a training loop the top two eigenvalues of the batch Hessian are
    often close and swap between measurements; a single warm vector then starts near the
    new *second* eigenvector, and a residual-based stop accepts the second eigenvalue. The
    previous top-2 span holds the new top eigenvector much better than its first vector
    when the spectrum moves little between measurements (every step on the MNIST-1D MLP of
    ``benchmarks/sharpness_warm.py``: 0.95 of its squared norm against 0.86), and
    Rayleigh-Ritz on the span picks the larger of the two.

    Args:
        op: a symmetric :class:`LinearOperator` or a dense symmetric tensor.
        start: ``(dim, b)`` warm block, ``b >= 1`` (columns need not be orthonormal).
        eig_tol: stop when the estimated eigenvalue error is at most ``eig_tol`` relative,
            ``> 0`` (default 1e-3).
        max_iter: the most products (default ``min(dim, 100)``), ``b <= max_iter <= dim``.
        min_iter: no stop before this many products (default 1: once the block is in),
            ``>= 1``, capped at ``max_iter``.

    Returns:
        ``(result, error_estimate)``: an :class:`EigenResult` with the top ``b`` Ritz pairs
        (values descending, vectors: the next warm block), their residual norms, the
        products used and ``converged`` (for the top pair: the estimate met ``eig_tol``;
        the other pairs are not tested and read ``False``); and the final
        :func:`top_error_estimate` (relative).

    Raises:
        ConfigError: a start block of the wrong shape or not finite, or an argument out of
            range.
        NotFiniteError: a product has NaN or Inf entries.

    References (not among the papers.md rows):
        E. R. Davidson, "The iterative calculation of a few of the lowest eigenvalues and
        corresponding eigenvectors of large real-symmetric matrices", J. Comput. Phys.,
        1975 (the expansion, here with no preconditioner); T. Kato, "On the upper and lower
        bounds of eigenvalues", J. Phys. Soc. Japan, 1949, and B. N. Parlett, "The
        Symmetric Eigenvalue Problem", 1998 (the Kato-Temple bound).

    Deviations: no preconditioner (Davidson's diagonal one needs the Hessian's diagonal,
    which costs products); the second eigenvalue in the Kato-Temple bound is estimated
    from the search space (see :func:`top_error_estimate`), so the recorded error is an
    estimate.

    Example:
        >>> import torch
        >>> A = torch.diag(torch.tensor([1.0, 2.0, 9.0, 10.0], dtype=torch.float64))
        >>> res, err = block_warm_top(A, torch.eye(4, dtype=torch.float64)[:, 2:])
        >>> res.values.tolist(), res.matvecs, bool(res.converged[0])
        ([10.0, 9.0], 2, True)
    """
    op = as_operator(op)
    if start.ndim != 2 or start.shape[0] != op.dim or start.shape[1] < 1:
        raise ConfigError(f"block_warm_top: start must have shape ({op.dim}, b) with b >= 1; "
                          f"got {tuple(start.shape)}.")
    if not bool(torch.isfinite(start).all()):
        raise ConfigError("block_warm_top: start must be finite.")
    b = start.shape[1]
    check_range("eig_tol", eig_tol, low=0.0, low_open=True, owner="block_warm_top")
    max_iter = min(op.dim, 100) if max_iter is None else max_iter
    check_range("max_iter", max_iter, low=b, high=op.dim, owner="block_warm_top")
    check_range("min_iter", min_iter, low=1, owner="block_warm_top")
    min_iter = min(min_iter, max_iter)
    step, estimate, ok = None, math.inf, False
    for step in ritz_expansion(op, start, max_iter):
        if not step.block_done or step.basis.shape[0] < min_iter:
            continue  # the block is not all in yet, or too few products
        res = step.residuals(min(2, step.values.numel()))
        estimate = top_error_estimate(step.values, res)
        if estimate <= eig_tol:
            ok = True
            break
    if step is None:
        raise ConfigError("block_warm_top: start must have a nonzero column.")
    if not ok and step.basis.shape[0] < min_iter:  # the space became invariant first
        estimate = top_error_estimate(step.values, step.residuals(min(2, step.values.numel())))
        ok = estimate <= eig_tol
    k = min(b, step.values.numel())
    converged = torch.zeros(k, dtype=torch.bool)
    converged[0] = ok
    m = step.basis.shape[0]
    return (EigenResult(values=step.values[:k].to(op.dtype), vectors=step.vectors(k),
                        residuals=step.residuals(k), matvecs=m, converged=converged,
                        iterations=m), estimate)
