r"""Classical preconditioners for CG, the baselines of the learned ones: none, Jacobi,
incomplete Cholesky IC(0), and smoothed-aggregation algebraic multigrid (pyamg).

Each ``build(A) -> M`` returns a function ``r -> M r`` with ``M`` SPD approximating
:math:`A^{-1}`.

- Jacobi: :math:`M = \operatorname{diag}(A)^{-1}`.
- IC(0): :math:`M = (LL^\top)^{-1}` with ``L`` lower triangular on the sparsity pattern of
  ``tril(A)`` and :math:`(LL^\top)_{ij} = A_{ij}` on that pattern (Meijerink & van der Vorst,
  1977: it exists for M-matrices such as the 5-point matrices here). Written here because
  neither scipy nor pyamg has an incomplete Cholesky: ``scipy.sparse.linalg.spilu`` is
  SuperLU's threshold ILU with column permutation and pivoting, whose ``M`` is not symmetric,
  so CG's convergence theory would not hold and the comparison would not be with IC.
- AMG: one V-cycle of pyamg's ``smoothed_aggregation_solver(A)`` (its defaults: symmetric
  Gauss–Seidel smoothing), applied through ``aspreconditioner``.

The triangular solves of IC(0) and of the learned factor (papers.md row 59) share
:class:`FactorPreconditioner`, which factors the (already triangular) ``L`` with SuperLU in
natural order (no fill, no pivoting: an exact triangular solve in compiled code).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from trainlab.errors import ConfigError
from trainlab.pinn.solvers._method import SOLVERS, LinearSolver


class FactorPreconditioner:
    """``r -> (L L^T)^{-1} r`` for a sparse lower-triangular ``L`` with nonzero diagonal."""

    def __init__(self, L: sp.spmatrix):
        from scipy.sparse.linalg import splu

        L = sp.csc_matrix(L)
        if sp.triu(L, 1).nnz:
            raise ValueError("FactorPreconditioner needs a lower-triangular L")
        d = L.diagonal()
        if not np.all(np.isfinite(d)) or np.any(d == 0):
            raise ValueError("FactorPreconditioner needs a nonzero finite diagonal")
        self.L = L
        self._lu = splu(L, permc_spec="NATURAL", diag_pivot_thresh=0.0,
                        options={"SymmetricMode": False})

    def __call__(self, r: np.ndarray) -> np.ndarray:
        return self._lu.solve(self._lu.solve(r), trans="T")


def jacobi(A: sp.spmatrix):
    """``r -> r / diag(A)``."""
    d = np.asarray(A.diagonal(), dtype=np.float64)
    if np.any(d <= 0):
        raise ConfigError("jacobi: the matrix has a non-positive diagonal entry; not SPD")
    inv = 1.0 / d
    return lambda r: inv * r


def ic0_factor(A: sp.spmatrix) -> sp.csr_matrix:
    """The IC(0) factor ``L`` of a symmetric ``A``: lower triangular, pattern of ``tril(A)``,
    ``(L L^T)_ij = A_ij`` on that pattern.

    Raises:
        ConfigError: a non-positive pivot (IC(0) breaks down; ``A`` is not an M-matrix).
    """
    low = sp.tril(sp.csr_matrix(A, dtype=np.float64)).tocsr()
    low.sort_indices()
    n = low.shape[0]
    rows: list[dict[int, float]] = []
    for i in range(n):
        cols = low.indices[low.indptr[i]:low.indptr[i + 1]]
        vals = low.data[low.indptr[i]:low.indptr[i + 1]]
        row: dict[int, float] = {}
        for j, a in zip(cols.tolist(), vals.tolist()):
            if j == i:
                s = a - sum(v * v for v in row.values())
                if s <= 0:
                    raise ConfigError(f"ic0: non-positive pivot {s:.3g} at row {i}; the "
                                      "matrix is not an M-matrix (use another preconditioner)")
                row[i] = s**0.5
            else:
                rj = rows[j]
                s = a - sum(v * rj[m] for m, v in row.items() if m in rj)
                row[j] = s / rj[j]
        rows.append(row)
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.fromiter((c for r in rows for c in r), dtype=np.int64, count=indptr[-1])
    data = np.fromiter((v for r in rows for v in r.values()), dtype=np.float64,
                       count=indptr[-1])
    return sp.csr_matrix((data, indices, indptr), shape=(n, n))


def ic0(A: sp.spmatrix) -> FactorPreconditioner:
    """``r -> (L L^T)^{-1} r`` with ``L`` the IC(0) factor."""
    return FactorPreconditioner(ic0_factor(A))


def amg(A: sp.spmatrix):
    """One V-cycle of pyamg's smoothed-aggregation AMG (its defaults) as ``r -> M r``."""
    import pyamg

    ml = pyamg.smoothed_aggregation_solver(sp.csr_matrix(A))
    op = ml.aspreconditioner(cycle="V")
    return lambda r: op @ r


def none(A: sp.spmatrix):
    """No preconditioner (plain CG)."""
    return None


@SOLVERS.register("cg", summary="conjugate gradients without a preconditioner")
class PlainCG(LinearSolver):
    def preconditioner(self, A):
        return none(A)


@SOLVERS.register("jacobi", summary="CG preconditioned by the diagonal, M = diag(A)^-1")
class JacobiPCG(LinearSolver):
    def preconditioner(self, A):
        return jacobi(A)


@SOLVERS.register("ic0", summary="CG preconditioned by incomplete Cholesky IC(0) on the "
                                 "pattern of A (written here; scipy has no IC)")
class IC0PCG(LinearSolver):
    def preconditioner(self, A):
        return ic0(A)


@SOLVERS.register("amg", summary="CG preconditioned by one V-cycle of pyamg's smoothed-"
                                 "aggregation algebraic multigrid")
class AMGPCG(LinearSolver):
    def preconditioner(self, A):
        return amg(A)
