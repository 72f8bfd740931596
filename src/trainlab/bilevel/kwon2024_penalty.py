r"""A first-order penalty method for bilevel problems whose lower level may have many
solutions: only gradients, no Hessians or unrolling.

With :math:`h_\sigma(x, y) = \sigma F(x, y) + f(x, y)` (upper :math:`F`, lower :math:`f`),
:math:`l(x, \sigma) = \min_y h_\sigma(x, y)` and the surrogate hyper-objective
:math:`\psi_\sigma(x) = (l(x, \sigma) - l(x, 0)) / \sigma`, Danskin's theorem gives

.. math::
    \nabla \psi_\sigma(x) = \nabla_x F(x, y_\sigma)
        + \frac{\nabla_x f(x, y_\sigma) - \nabla_x f(x, y_0)}{\sigma},
    \quad y_\sigma \in \arg\min_y h_\sigma(x, y), \; y_0 \in \arg\min_y f(x, y).

:math:`\psi_\sigma` and the optimistic hyper-objective :math:`\psi(x) = \min\{F(x, y) : y
\in \arg\min f(x, \cdot)\}` and their gradients are :math:`O(\sigma)`-close under a proximal
error-bound condition on the lower level. The double-loop method keeps :math:`y_\sigma` and
:math:`y_0` warm across outer steps, refreshes each with ``inner_steps`` gradient steps on
:math:`h_\sigma` and :math:`f`, and takes :math:`x \leftarrow x - \eta \nabla\psi_\sigma(x)`.

References:
    Kwon, Kwon, Wright, Nowak. "On Penalty Methods for Nonconvex Bilevel Optimization and
    First-Order Stochastic Approximation", ICLR 2024 (papers.md row 100): the penalty
    function and :math:`\psi_\sigma`, the gradient formula with multiple lower-level
    solutions, the double-loop first-order algorithm with :math:`\sigma = O(\epsilon)`.

Deviations from the paper:
    Deterministic gradients, fixed ``sigma`` (the paper also decreases it) and an
    unconstrained outer variable (the paper projects onto a closed convex set); the inner
    step sizes and counts are arguments with no paper defaults. Only the abstract and a
    summary were read; the formulas above are the ones those give.
"""

from __future__ import annotations

import torch

from trainlab.bilevel.hypergradients import grad_y
from trainlab.bilevel.problem import BilevelProblem, BilevelRun
from trainlab.errors import check_range


def _grad_x(fn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = fn(x, y.detach())
        if not out.requires_grad:  # no explicit dependence on x
            return torch.zeros_like(x)
        (g,) = torch.autograd.grad(out, x, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def penalty_hypergradient(problem: BilevelProblem, x: torch.Tensor, y_sigma: torch.Tensor,
                          y_zero: torch.Tensor, *, sigma: float, inner_steps: int,
                          inner_lr: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(grad psi_sigma(x), y_sigma, y_0)`` after refreshing both inner iterates.

    Args:
        y_sigma, y_zero: warm starts for ``argmin_y sigma F + f`` and ``argmin_y f``.
        sigma: the penalty weight ``> 0`` (the paper takes ``sigma = O(epsilon)``).
        inner_steps: gradient steps on each inner problem. inner_lr: their step size.
    """
    owner = "penalty_hypergradient"
    check_range("sigma", sigma, low=0.0, low_open=True, owner=owner)
    check_range("inner_steps", inner_steps, low=0, owner=owner)
    check_range("inner_lr", inner_lr, low=0.0, low_open=True, owner=owner)

    def penalised(xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return sigma * problem.outer(xx, yy) + problem.inner(xx, yy)

    ys, y0 = y_sigma.detach(), y_zero.detach()
    for _ in range(inner_steps):
        ys = ys - inner_lr * grad_y(penalised, x, ys, False)
        y0 = y0 - inner_lr * grad_y(problem.inner, x, y0, False)
    g = _grad_x(problem.outer, x, ys) + (
        _grad_x(problem.inner, x, ys) - _grad_x(problem.inner, x, y0)) / sigma
    return g, ys, y0


def penalty_bilevel(problem: BilevelProblem, x0: torch.Tensor, y0: torch.Tensor, *,
                    sigma: float, inner_steps: int, inner_lr: float, outer_lr: float,
                    outer_steps: int) -> BilevelRun:
    """The double-loop penalty method; ``BilevelRun.y`` is the final ``y_sigma``."""
    check_range("outer_lr", outer_lr, low=0.0, low_open=True, owner="penalty_bilevel")
    check_range("outer_steps", outer_steps, low=0, owner="penalty_bilevel")
    x = x0.detach().clone()
    ys, yz = y0.detach().clone(), y0.detach().clone()
    values, norms = [], []
    for _ in range(outer_steps):
        g, ys, yz = penalty_hypergradient(problem, x, ys, yz, sigma=sigma,
                                          inner_steps=inner_steps, inner_lr=inner_lr)
        values.append(problem.outer(x, ys).detach())
        norms.append(g.norm())
        x = x - outer_lr * g
    values.append(problem.outer(x, ys).detach())
    return BilevelRun(x, ys, torch.stack(values), torch.stack(norms) if norms else x.new_empty(0))
