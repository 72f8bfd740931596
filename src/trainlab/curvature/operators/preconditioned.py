"""A symmetric operator seen through a diagonal preconditioner: P^-1/2 A P^-1/2."""

from __future__ import annotations

import torch

from trainlab.curvature.operators._linear import LinearOperator, as_operator
from trainlab.errors import ConfigError


class PreconditionedOperator(LinearOperator):
    r""":math:`P^{-1/2} A P^{-1/2}` for a positive diagonal :math:`P`: symmetric, with the
    same eigenvalues as :math:`P^{-1}A` (similar matrices), so symmetric solvers (Lanczos)
    give the spectrum of the preconditioned operator. An eigenvector :math:`u` here maps to
    the eigenvector :math:`P^{-1/2}u` of :math:`P^{-1}A`.

    Args:
        op: a symmetric operator or dense tensor.
        diag: the diagonal of :math:`P`, shape ``(dim,)``, all entries > 0.
    """

    def __init__(self, op: LinearOperator | torch.Tensor, diag: torch.Tensor):
        self.op = as_operator(op)
        self.dim, self.dtype, self.device = self.op.dim, self.op.dtype, self.op.device
        if diag.shape != (self.dim,) or not bool((diag > 0).all()):
            raise ConfigError(f"diag must be a positive vector of shape ({self.dim},); got "
                              f"shape {tuple(diag.shape)}, min {diag.min().item()!r}.")
        self.scale = diag.to(dtype=self.dtype, device=self.device).rsqrt()

    def matvec(self, vec: torch.Tensor) -> torch.Tensor:
        self._check(vec, 1)
        return self.scale * self.op.matvec(self.scale * vec)

    def matmat(self, mat: torch.Tensor) -> torch.Tensor:
        self._check(mat, 2)
        return self.scale[:, None] * self.op.matmat(self.scale[:, None] * mat)
