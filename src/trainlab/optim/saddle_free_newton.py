r"""Saddle-free Newton in a Krylov subspace.

Newton's step is attracted to saddle points, where the Hessian has negative eigenvalues;
gradient descent is slowed by them. Saddle-free Newton rescales the gradient by
:math:`|H|^{-1}`, the inverse of the Hessian with its eigenvalues replaced by their absolute
values, so it moves *away* along negative-curvature directions and at Newton speed along the
rest. As in the paper, :math:`|H|` is taken in the :math:`k`-dimensional Krylov subspace
:math:`\mathcal K_k(H, g)` built by Lanczos (:func:`trainlab.curvature.lanczos`, full
reorthogonalization, started at :math:`g`): with Ritz pairs :math:`(\theta_i, u_i)`,

.. math::  w \leftarrow w - \eta \sum_i \frac{u_i^\top g}{|\theta_i| + \lambda}\, u_i .

References:
    Dauphin, Pascanu, Gulcehre, Cho, Ganguli, Bengio. "Identifying and attacking the saddle
    point problem in high-dimensional non-convex optimization", NeurIPS 2014 (papers.md row
    114). Defaults: k = 20 Krylov vectors (capped at the parameter count); damping 1e-3 is a
    placeholder, since the paper picks the damping by a search at every step.

Deviations from the paper:
    The damping ``lambda`` and the step size are fixed hyper-parameters instead of being
    chosen by the paper's per-step search over a grid of damping values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from trainlab.curvature import LinearOperator, lanczos
from trainlab.errors import check_range
from trainlab.optim._outer import ClosureOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.loss_closure import hessian_vector_product, set_grads


class ClosureHessian(LinearOperator):
    """The Hessian at the current parameters as a flat operator, from a contract closure
    (exact when the closure offers ``hvp``, else central finite differences)."""

    def __init__(self, closure: Callable[[], torch.Tensor], params: list[torch.Tensor]):
        self.closure, self.params = closure, params
        self.sizes = [p.numel() for p in params]
        self.dim, self.dtype, self.device = sum(self.sizes), params[0].dtype, params[0].device

    def matvec(self, vec: torch.Tensor) -> torch.Tensor:
        parts = [c.view_as(p) for c, p in zip(torch.split(vec, self.sizes), self.params)]
        hv = hessian_vector_product(self.closure, self.params, parts)
        return torch.cat([t.reshape(-1) for t in hv])

    def matmat(self, mat: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.matvec(c) for c in mat.T], dim=1)


def saddle_free_direction(op: LinearOperator, g: torch.Tensor, krylov_dim: int, damping: float
                          ) -> torch.Tensor:
    """``|H|_k^{-1} g`` in the Krylov subspace ``K_k(H, g)`` (damped)."""
    k = min(krylov_dim, op.dim)
    res = lanczos(op, k=k, which="LM", max_iter=k, v0=g)
    coeff = (res.vectors.T @ g) / (res.values.abs() + damping)
    return res.vectors @ coeff


class SaddleFreeNewton(ClosureOptimizer):
    """Saddle-free Newton with a Krylov-subspace ``|H|`` (module docstring).

    Args:
        params: parameters (one global solve over all groups).
        lr: step size, >= 0 (1 is the full saddle-free Newton step).
        damping: added to ``|theta_i|``, > 0.
        krylov_dim: Krylov subspace dimension ``k`` >= 1.
    """

    joint_hypers = "all"
    joint_step = True

    def __init__(self, params: Iterable[Any], lr: float = 1.0, damping: float = 1e-3,
                 krylov_dim: int = 20):
        check_range("lr", lr, low=0.0, owner="SaddleFreeNewton")
        check_range("damping", damping, low=0.0, low_open=True, owner="SaddleFreeNewton")
        check_range("krylov_dim", krylov_dim, low=1, owner="SaddleFreeNewton")
        super().__init__(params, dict(lr=lr, damping=damping, krylov_dim=krylov_dim))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        closure, params, loss, grads = self._first_call(closure)
        h = self.param_groups[0]
        g = torch.cat([t.reshape(-1) for t in grads])
        if g.norm() > 0:
            d = saddle_free_direction(ClosureHessian(closure, params), g, h["krylov_dim"],
                                      h["damping"])
            for p, c in zip(params, torch.split(d, [p.numel() for p in params])):
                p.add_(c.view_as(p), alpha=-h["lr"])
        set_grads(params, grads)
        return loss


def saddle_free_newton(params: Iterable[Any], lr: float = 1.0, damping: float = 1e-3,
                       krylov_dim: int = 20) -> SaddleFreeNewton:
    """Saddle-free Newton (|H| in a Lanczos Krylov subspace)."""
    return SaddleFreeNewton(params, lr=lr, damping=damping, krylov_dim=krylov_dim)


OPTIMIZERS.register("saddle-free-newton", saddle_free_newton, papers=(114,),
                    summary="saddle-free Newton: |H|^-1 g in a Lanczos Krylov subspace")
