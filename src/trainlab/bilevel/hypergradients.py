r"""Hypergradients of :math:`x \mapsto F(x, y(x))` for a bilevel problem: through an unrolled
inner loop (reverse mode, as in iterative differentiation) or by the implicit function
theorem at an (approximate) inner solution.

Unrolled: :math:`y_{t+1} = \Phi_t(x, y_t)`, :math:`t < T`, and
:math:`\tfrac{d}{dx} F(x, y_T(x))` by reverse-mode autograd through the :math:`T` steps (any
step map :math:`\Phi`: plain gradient descent here, the aggregated step of BDA in
:mod:`trainlab.bilevel.liu2020_bda`).

Implicit: :func:`trainlab.optim.procedures.ift_hypergradient` (row 54's Neumann-series
procedure) with ``train_loss = inner`` and ``val_loss = outer``, which assumes the inner
Hessian is invertible on the directions that matter.

References:
    Vicol, Lorraine, Pedregosa, Duvenaud, Grosse. "On Implicit Bias in Overparameterized
    Bilevel Optimization", ICML 2022 (papers.md row 60), Section 2 and Appendix
    (Algorithms 3 and 6: Neumann and iterative-differentiation hypergradients).
    Lorraine, Vicol, Duvenaud, AISTATS 2020 (papers.md row 54) for the Neumann procedure.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from trainlab.bilevel.problem import BilevelProblem, Objective
from trainlab.errors import check_range
from trainlab.optim.procedures.ift_hypergradient import ift_hypergradient

Step = Callable[[torch.Tensor, torch.Tensor, int, bool], torch.Tensor]


def grad_y(fn: Objective, x: torch.Tensor, y: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """``d fn(x, y) / dy`` by reverse mode; with ``create_graph`` the result stays
    differentiable in ``x`` (and in ``y``'s own history)."""
    if not y.requires_grad:
        y = y.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(fn(x, y), y, create_graph=create_graph)
    return g


def gradient_step(problem: BilevelProblem, lr: float) -> Step:
    """``Phi_t(x, y) = y - lr * grad_y f(x, y)``: plain inner gradient descent."""
    check_range("lr", lr, low=0.0, low_open=True, owner="gradient_step")
    return lambda x, y, t, create_graph: y - lr * grad_y(problem.inner, x, y, create_graph)


def unroll(step: Step, x: torch.Tensor, y0: torch.Tensor, steps: int, *,
           create_graph: bool = False) -> torch.Tensor:
    """``y_T`` after ``steps`` applications of ``step`` from ``y0`` (``t = 1..T``);
    differentiable in ``x`` when ``create_graph`` (then ``x`` must require grad)."""
    check_range("steps", steps, low=0, owner="unroll")
    y = y0
    for t in range(1, steps + 1):
        y = step(x, y, t, create_graph)
    return y if create_graph else y.detach()


def unrolled_hypergradient(problem: BilevelProblem, step: Step, x: torch.Tensor,
                           y0: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dF(x, y_T(x))/dx, y_T)`` through ``steps`` unrolled steps from ``y0`` (``y0`` is
    held fixed: a warm start is not differentiated through earlier outer steps)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = unroll(step, x, y0.detach(), steps, create_graph=True)
        out = problem.outer(x, y)
        if not out.requires_grad:  # F depends on x neither directly nor through y_T
            return torch.zeros_like(x), y.detach()
        (g,) = torch.autograd.grad(out, x, allow_unused=True)
    return (torch.zeros_like(x) if g is None else g), y.detach()


def implicit_hypergradient(problem: BilevelProblem, x: torch.Tensor, y: torch.Tensor, *,
                           neumann_steps: int = 20, alpha: float = 0.1) -> torch.Tensor:
    """The IFT hypergradient at ``(x, y)`` (``y`` an approximate inner minimiser), computed
    by row 54's :func:`~trainlab.optim.procedures.ift_hypergradient`."""
    return ift_hypergradient(lambda w, lam: problem.inner(lam, w),
                             lambda w, lam: problem.outer(lam, w), y, x,
                             neumann_steps=neumann_steps, alpha=alpha).hypergrad
