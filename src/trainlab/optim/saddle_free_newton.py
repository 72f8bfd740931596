r"""Saddle-free Newton in a Krylov subspace.

Newton's step is attracted to saddle points, where the Hessian has negative eigenvalues;
gradient descent is slowed by them. Saddle-free Newton rescales the gradient by
:math:`|H|^{-1}`, the inverse of the Hessian with its eigenvalues replaced by their absolute
values, so it moves *away* along negative-curvature directions and at Newton speed along the
rest. As in the paper, :math:`|H|` is taken in the :math:`k`-dimensional Krylov subspace
:math:`\mathcal K_k(H, g)` built by Lanczos (:func:`trainlab.curvature.lanczos`, full
reorthogonalization, started at :math:`g`): with Ritz pairs :math:`(\theta_i, u_i)`,

.. math::  \Delta(\lambda) = -\sum_i \frac{u_i^\top g}{|\theta_i| + \lambda}\, u_i .

The damping is chosen at every step as in the paper's approximate saddle-free Newton
(Algorithm 1): every candidate :math:`\lambda` of a grid gives a step, the loss is evaluated at
each :math:`w + \eta\Delta(\lambda)`, and the step with the lowest loss is taken,
:math:`\lambda^* = \arg\min_\lambda f(w + \eta\Delta(\lambda))`. The algorithm's inner loop
then repeats this ``subspace_steps`` times in the same subspace and with the same
:math:`|\hat H|` (only the projected gradient :math:`V^\top\nabla f` is recomputed), before
the next Lanczos run. With a fixed ``damping`` instead of the search, one step is
:math:`\eta\Delta(\lambda)` with that :math:`\lambda` (no extra loss evaluations).

References:
    Dauphin, Pascanu, Gulcehre, Cho, Ganguli, Bengio. "Identifying and attacking the saddle
    point problem in high-dimensional non-convex optimization", NeurIPS 2014, Algorithm 1
    (the Krylov subspace, the absolute-value Hessian in it, the per-step
    :math:`\arg\min_\lambda` over the damping); Pascanu, Dauphin, Ganguli, Bengio, "On the
    saddle point problem for non-convex optimization", arXiv 1405.4604, 2014 (papers.md row
    114). k = 20 Krylov vectors (capped at the parameter count).

Deviations from the paper:
    The grid searched is not stated in the text available to us (the search corpus holds the
    NeurIPS version's abstract and introduction and the arXiv 1405.4604 introduction, not
    the experimental details; the README of D. Fernandes' SaddleFreeOptimizer, a
    reimplementation, describes the paper's rule the same way: several dampings tried, the
    lowest loss kept):
    ``damping_grid`` defaults to the seven decades :math:`10^0 \dots 10^{-6}`, our choice.
    ``subspace_steps`` (the paper's :math:`m`) defaults to 1, also not stated. Lanczos uses
    full reorthogonalization (the paper: plain Lanczos). The search costs one closure call
    per grid value per step (forward and backward, since the closure contract always
    differentiates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from trainlab.curvature import LinearOperator, lanczos
from trainlab.errors import ConfigError, check_range
from trainlab.optim._outer import ClosureOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.loss_closure import evaluate, hessian_vector_product, set_grads

DAMPING_GRID = (1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


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


def krylov_absolute_hessian(op: LinearOperator, g: torch.Tensor, krylov_dim: int
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ritz vectors ``U`` ``(d, k)`` and ``|theta|`` ``(k,)`` of the Hessian in ``K_k(H, g)``:
    ``U diag(|theta|) U^T`` is the paper's ``|H^|`` in the Lanczos subspace."""
    k = min(krylov_dim, op.dim)
    res = lanczos(op, k=k, which="LM", max_iter=k, v0=g)
    return res.vectors, res.values.abs()


def saddle_free_direction(op: LinearOperator, g: torch.Tensor, krylov_dim: int, damping: float
                          ) -> torch.Tensor:
    """``|H|_k^{-1} g`` in the Krylov subspace ``K_k(H, g)`` (damped)."""
    basis, abs_values = krylov_absolute_hessian(op, g, krylov_dim)
    return basis @ ((basis.T @ g) / (abs_values + damping))


def damping_candidates(basis: torch.Tensor, abs_values: torch.Tensor, g: torch.Tensor,
                       grid: torch.Tensor) -> torch.Tensor:
    """The steps ``-U (|theta| + lambda)^-1 U^T g``, one row per ``lambda`` of ``grid``."""
    coeff = basis.T @ g
    return -(coeff / (abs_values + grid[:, None])) @ basis.T


class SaddleFreeNewton(ClosureOptimizer):
    """Saddle-free Newton with a Krylov-subspace ``|H|`` (module docstring).

    Args:
        params: parameters (one global solve over all groups).
        lr: step size, >= 0 (1 is the full saddle-free Newton step).
        damping: ``None`` (default): the paper's per-step search over ``damping_grid``; a
            number > 0: that fixed damping, added to ``|theta_i|``.
        damping_grid: candidate dampings of the search, each > 0.
        subspace_steps: the paper's inner steps ``m`` per Lanczos run, >= 1 (search only).
        krylov_dim: Krylov subspace dimension ``k`` >= 1.

    State keys: ``damping`` (the damping of the last step taken).
    """

    joint_hypers = "all"
    joint_step = True

    def __init__(self, params: Iterable[Any], lr: float = 1.0, damping: float | None = None,
                 krylov_dim: int = 20, damping_grid: Iterable[float] = DAMPING_GRID,
                 subspace_steps: int = 1):
        owner = "SaddleFreeNewton"
        check_range("lr", lr, low=0.0, owner=owner)
        if damping is not None:
            check_range("damping", damping, low=0.0, low_open=True, owner=owner)
        check_range("krylov_dim", krylov_dim, low=1, owner=owner)
        check_range("subspace_steps", subspace_steps, low=1, owner=owner)
        damping_grid = tuple(float(v) for v in damping_grid)
        if not damping_grid or min(damping_grid) <= 0:
            raise ConfigError(f"{owner}: damping_grid must be a non-empty list of values > 0, "
                              f"got {damping_grid!r}")
        if damping is not None and subspace_steps != 1:
            raise ConfigError(f"{owner}: subspace_steps={subspace_steps} needs the damping "
                              "search (damping=None); with a fixed damping use 1")
        super().__init__(params, dict(lr=lr, damping=damping, krylov_dim=krylov_dim,
                                      damping_grid=damping_grid,
                                      subspace_steps=subspace_steps))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        closure, params, loss, grads = self._first_call(closure)
        h = self.param_groups[0]
        g = torch.cat([t.reshape(-1) for t in grads])
        if g.norm() > 0 and h["damping"] is not None:
            d = saddle_free_direction(ClosureHessian(closure, params), g, h["krylov_dim"],
                                      h["damping"])
            _move(params, -h["lr"] * d)
            self.state[params[0]]["damping"] = h["damping"]
        elif g.norm() > 0:
            self._search(closure, params, g)
        set_grads(params, grads)
        return loss

    def _search(self, closure: Callable[[], torch.Tensor], params: list[torch.Tensor],
                g: torch.Tensor) -> None:
        """Algorithm 1's inner loop: ``subspace_steps`` arg-min-over-damping steps in one
        Krylov subspace."""
        h = self.param_groups[0]
        basis, abs_values = krylov_absolute_hessian(ClosureHessian(closure, params), g,
                                                    h["krylov_dim"])
        grid = torch.tensor(h["damping_grid"], dtype=g.dtype, device=g.device)
        for j in range(h["subspace_steps"]):
            if j > 0:
                g = torch.cat([t.reshape(-1) for t in evaluate(closure, params)[1]])
            steps = h["lr"] * damping_candidates(basis, abs_values, g, grid)
            losses = []
            for step in steps:
                _move(params, step)
                losses.append(float(evaluate(closure, params)[0]))
                _move(params, -step)
            best = min(range(len(losses)), key=losses.__getitem__)
            _move(params, steps[best])
            self.state[params[0]]["damping"] = h["damping_grid"][best]


def _move(params: list[torch.Tensor], step: torch.Tensor) -> None:
    """Add the flat ``step`` to the parameters in place."""
    for p, c in zip(params, torch.split(step, [p.numel() for p in params])):
        p.add_(c.view_as(p))


def saddle_free_newton(params: Iterable[Any], lr: float = 1.0, damping: float | None = None,
                       krylov_dim: int = 20, damping_grid: Iterable[float] = DAMPING_GRID,
                       subspace_steps: int = 1) -> SaddleFreeNewton:
    """Saddle-free Newton (|H| in a Lanczos Krylov subspace, damping searched per step)."""
    return SaddleFreeNewton(params, lr=lr, damping=damping, krylov_dim=krylov_dim,
                            damping_grid=damping_grid, subspace_steps=subspace_steps)


OPTIMIZERS.register("saddle-free-newton", saddle_free_newton, papers=(114,),
                    summary="saddle-free Newton: |H|^-1 g in a Lanczos Krylov subspace, the "
                            "damping chosen per step by the lowest loss")
