r"""Cold-start and warm-start bilevel gradient descent, whose limits differ when a level is
overparameterized.

Both alternate :math:`T` inner gradient steps on :math:`f(x, \cdot)` with one outer step
:math:`x \leftarrow x - \eta \, \widehat{\nabla} F`:

- **cold start** (Algorithm 1) re-initialises the inner variable at :math:`y_0` before every
  outer step, so the inner solution is a function :math:`y^*(x)` of the outer variable;
  with inner GD on an underdetermined least-squares problem that function is the projection of
  :math:`y_0` onto the solution set, and for quadratic objectives cold start converges to the
  minimum-norm (closest to :math:`x_0`) outer solution;
- **warm start** (Algorithm 2) continues from the previous inner iterate, so :math:`y` carries
  the history of :math:`x` and the pair can stop at points no cold-start run reaches (its
  inner iterate stays close to earlier solutions, an implicit proximal bias). Re-training
  :math:`y` from scratch at the warm-start :math:`x` then loses what :math:`y` had stored.

The hypergradient :math:`\widehat{\nabla} F` is ``"unrolled"`` (reverse mode through the
:math:`T` steps of this outer iteration; warm start does not differentiate through earlier
iterations) or ``"implicit"`` (the IFT with a Neumann series, row 54's procedure).

References:
    Vicol, Lorraine, Pedregosa, Duvenaud, Grosse. "On Implicit Bias in Overparameterized
    Bilevel Optimization", ICML 2022 (papers.md row 60): Algorithms 1-2 (cold/warm start),
    Section 3 (cold start and minimum-norm outer solutions for quadratics), Section 4
    (warm start; dataset distillation where warm-start + re-train collapses, Table 3).

Deviations from the paper:
    Plain GD at both levels with fixed step sizes (the paper also uses other inner and outer
    optimizers); its experiments are dataset distillation on MNIST/CIFAR, here the toy
    one-point distillation problem of the tests and phenomenon. Defaults are not the paper's
    (its toy settings were not read): ``inner_steps``, the step sizes and
    ``outer_steps`` must be given.
"""

from __future__ import annotations

import torch

from trainlab.bilevel.hypergradients import (
    gradient_step,
    implicit_hypergradient,
    unroll,
    unrolled_hypergradient,
)
from trainlab.bilevel.problem import BilevelProblem, BilevelRun
from trainlab.errors import check_choice, check_range


def bilevel_gd(problem: BilevelProblem, x0: torch.Tensor, y0: torch.Tensor, *, start: str,
               inner_steps: int, inner_lr: float, outer_lr: float, outer_steps: int,
               hypergradient: str = "unrolled", neumann_steps: int = 20,
               alpha: float = 0.1) -> BilevelRun:
    """Bilevel gradient descent with a cold or warm inner start.

    Args:
        problem: the outer and inner objectives.
        x0: the outer start. y0: the inner start (the cold-start reset point).
        start: ``"cold"`` (reset ``y <- y0`` every outer step) or ``"warm"``.
        inner_steps: inner GD steps per outer step (``T >= 1``). inner_lr: their step.
        outer_lr: the outer step. outer_steps: number of outer steps.
        hypergradient: ``"unrolled"`` or ``"implicit"`` (then ``neumann_steps``, ``alpha``
            go to :func:`~trainlab.optim.procedures.ift_hypergradient`).
    """
    owner = "bilevel_gd"
    check_choice("start", start, ("cold", "warm"), owner=owner)
    check_choice("hypergradient", hypergradient, ("unrolled", "implicit"), owner=owner)
    check_range("inner_steps", inner_steps, low=1, owner=owner)
    check_range("outer_lr", outer_lr, low=0.0, low_open=True, owner=owner)
    check_range("outer_steps", outer_steps, low=0, owner=owner)
    step = gradient_step(problem, inner_lr)
    x, y_init = x0.detach().clone(), y0.detach().clone()
    y = y_init
    values, norms = [], []
    for _ in range(outer_steps):
        start_y = y_init if start == "cold" else y
        if hypergradient == "unrolled":
            g, y = unrolled_hypergradient(problem, step, x, start_y, inner_steps)
        else:
            y = unroll(step, x, start_y, inner_steps)
            g = implicit_hypergradient(problem, x, y, neumann_steps=neumann_steps, alpha=alpha)
        values.append(problem.outer(x, y).detach())
        norms.append(g.norm())
        x = x - outer_lr * g
    if start == "cold" or not values:
        y = unroll(step, x, y_init if start == "cold" else y, inner_steps)
    values.append(problem.outer(x, y).detach())
    return BilevelRun(x, y, torch.stack(values), torch.stack(norms) if norms else x.new_empty(0))


def cold_start_blo(problem: BilevelProblem, x0: torch.Tensor, y0: torch.Tensor,
                   **kwargs) -> BilevelRun:
    """:func:`bilevel_gd` with ``start="cold"`` (Vicol et al. 2022, Algorithm 1)."""
    return bilevel_gd(problem, x0, y0, start="cold", **kwargs)


def warm_start_blo(problem: BilevelProblem, x0: torch.Tensor, y0: torch.Tensor,
                   **kwargs) -> BilevelRun:
    """:func:`bilevel_gd` with ``start="warm"`` (Vicol et al. 2022, Algorithm 2)."""
    return bilevel_gd(problem, x0, y0, start="warm", **kwargs)
