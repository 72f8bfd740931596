"""Symmetric linear operators on flat vectors: the interface every curvature solver uses.

A :class:`LinearOperator` knows its size, dtype and device and multiplies flat vectors
(``matvec``) and column blocks (``matmat``). Solvers only call these two methods, so they run
unchanged on a curvature operator, a preconditioned one, or a dense test matrix.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse.linalg as spla
import torch

from trainlab.errors import ConfigError


class LinearOperator(ABC):
    """A symmetric ``dim x dim`` operator acting on flat ``torch`` vectors.

    Subclasses implement :meth:`matmat` (a block of columns, shape ``(dim, k)``) and may
    override :meth:`matvec` when a single product is cheaper than a one-column block.
    """

    dim: int
    dtype: torch.dtype
    device: torch.device

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.dim)

    @abstractmethod
    def matmat(self, mat: torch.Tensor) -> torch.Tensor:
        """``A @ mat`` for ``mat`` of shape ``(dim, k)``."""

    def matvec(self, vec: torch.Tensor) -> torch.Tensor:
        """``A @ vec`` for a flat ``vec`` of shape ``(dim,)``."""
        self._check(vec, 1)
        return self.matmat(vec[:, None])[:, 0]

    def __matmul__(self, other: torch.Tensor) -> torch.Tensor:
        return self.matvec(other) if other.ndim == 1 else self.matmat(other)

    def _check(self, x: torch.Tensor, ndim: int) -> None:
        if x.ndim != ndim or x.shape[0] != self.dim:
            want = f"({self.dim},)" if ndim == 1 else f"({self.dim}, k)"
            raise ConfigError(f"{type(self).__name__} expects a tensor of shape {want}; "
                              f"got shape {tuple(x.shape)}.")

    def to_scipy(self) -> spla.LinearOperator:
        """This operator as a :class:`scipy.sparse.linalg.LinearOperator` (NumPy in and out,
        products computed in torch with this operator's dtype)."""
        np_dtype = torch.empty((), dtype=self.dtype).numpy().dtype

        def mv(x: np.ndarray) -> np.ndarray:
            v = torch.as_tensor(np.asarray(x).reshape(-1), dtype=self.dtype, device=self.device)
            return self.matvec(v).detach().cpu().numpy()

        def mm(x: np.ndarray) -> np.ndarray:
            m = torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device)
            return self.matmat(m).detach().cpu().numpy()

        return spla.LinearOperator(self.shape, matvec=mv, rmatvec=mv, matmat=mm, rmatmat=mm,
                                   dtype=np_dtype)


class MatrixOperator(LinearOperator):
    """A dense symmetric matrix as an operator (for tests and small problems)."""

    def __init__(self, matrix: torch.Tensor):
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ConfigError(f"MatrixOperator needs a square matrix; got shape "
                              f"{tuple(matrix.shape)}.")
        self.matrix = matrix
        self.dim, self.dtype, self.device = matrix.shape[0], matrix.dtype, matrix.device

    def matmat(self, mat: torch.Tensor) -> torch.Tensor:
        self._check(mat, 2)
        return self.matrix @ mat


def as_operator(op: LinearOperator | torch.Tensor) -> LinearOperator:
    """Accept an operator or a dense square tensor."""
    if isinstance(op, LinearOperator):
        return op
    if isinstance(op, torch.Tensor):
        return MatrixOperator(op)
    raise ConfigError(f"Expected a LinearOperator or a square tensor; got {type(op).__name__}.")
