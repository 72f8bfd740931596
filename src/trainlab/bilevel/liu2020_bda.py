r"""Bilevel descent aggregation (BDA): inner steps that mix the lower- and upper-level
gradients, so the unrolled inner solution is pulled towards the upper level's preferred
point when the lower level has many minimisers.

.. math::
    y_{t+1} = y_t - \big[(1 - \alpha_t)\, s_l \nabla_y f(x, y_t)
                        + \alpha_t\, s_u \nabla_y F(x, y_t)\big],
    \qquad \alpha_t = \alpha / t, \; t = 1, \dots, T,

from a fixed :math:`y_0` every outer step; then
:math:`x \leftarrow \mathrm{Proj}_X(x - \eta \, \tfrac{d}{dx} F(x, y_T(x)))` by reverse mode
through the :math:`T` steps. :math:`\alpha = 0` is plain unrolled gradient descent (the
lower-level-singleton scheme), which on a non-singleton lower level only sees the minimiser
its inner GD happens to reach.

The paper's counter-example (``bda_counterexample``): :math:`x, y_1, y_2 \in \mathbb{R}^n`,
:math:`F = \tfrac12\|x - y_2\|^4 + \tfrac12\|y_1 - e\|^4`,
:math:`f = \tfrac12\|y_1\|^2 - x^\top y_1`: every :math:`(x, y_2)` is a lower-level
solution, the optimistic solution is :math:`x = y_1 = y_2 = e`, but from :math:`y_0 = 0`
plain unrolling never moves :math:`y_2` and solves :math:`\min \tfrac12\|x\|^4 +
\tfrac12\|x - e\|^4` instead (:math:`x = e/2`, :math:`F = n/16`).

References:
    Liu, Mu, Yuan, Zeng, Zhang. "A Generic First-Order Algorithmic Framework for Bi-Level
    Programming Beyond Lower-Level Singleton", ICML 2020 (papers.md row 88): the aggregated
    descent step, the counter-example to LLS-based schemes, convergence without LLS.

Deviations from the paper:
    Only the abstract and the authors' library (BOML, TensorFlow 1; its ``alpha_init``
    default 0 switches aggregation off) were read: the schedule ``alpha / t`` comes from a
    third-party reimplementation, and ``alpha``, ``s_l``, ``s_u`` have no paper defaults here
    (the tests and phenomenon use ``alpha = 0.5``, ``s_l = s_u = 0.9``). The counter-example
    is recalled, not transcribed; the outer projection is onto an optional box.
"""

from __future__ import annotations

import torch

from trainlab.bilevel.hypergradients import Step, grad_y, unroll, unrolled_hypergradient
from trainlab.bilevel.problem import BilevelProblem, BilevelRun
from trainlab.errors import check_range


def aggregated_step(problem: BilevelProblem, *, alpha: float, s_l: float, s_u: float) -> Step:
    """The BDA inner step with ``alpha_t = alpha / t`` (``alpha = 0``: plain GD, step s_l)."""
    check_range("alpha", alpha, low=0.0, high=1.0, owner="aggregated_step")
    check_range("s_l", s_l, low=0.0, low_open=True, owner="aggregated_step")
    check_range("s_u", s_u, low=0.0, owner="aggregated_step")

    def step(x: torch.Tensor, y: torch.Tensor, t: int, create_graph: bool) -> torch.Tensor:
        a = alpha / t
        d = (1 - a) * s_l * grad_y(problem.inner, x, y, create_graph)
        if a > 0:
            d = d + a * s_u * grad_y(problem.outer, x, y, create_graph)
        return y - d

    return step


def bda(problem: BilevelProblem, x0: torch.Tensor, y0: torch.Tensor, *, inner_steps: int,
        alpha: float, s_l: float, s_u: float, outer_lr: float, outer_steps: int,
        bounds: tuple[float, float] | None = None) -> BilevelRun:
    """Bilevel descent aggregation.

    Args:
        problem: upper (``outer``) and lower (``inner``) objectives.
        x0: the outer start. y0: the inner start, reused at every outer step.
        inner_steps: ``T >= 1``. alpha: the aggregation weight in ``[0, 1]`` (``alpha_t =
            alpha / t``; 0 = plain unrolled GD). s_l, s_u: lower/upper inner step sizes.
        outer_lr: the outer step. outer_steps: number of outer steps.
        bounds: ``(low, high)`` box for the projection of ``x`` (``None``: unconstrained).
    """
    check_range("inner_steps", inner_steps, low=1, owner="bda")
    check_range("outer_lr", outer_lr, low=0.0, low_open=True, owner="bda")
    check_range("outer_steps", outer_steps, low=0, owner="bda")
    step = aggregated_step(problem, alpha=alpha, s_l=s_l, s_u=s_u)
    x, y0 = x0.detach().clone(), y0.detach().clone()
    values, norms = [], []
    for _ in range(outer_steps):
        g, y = unrolled_hypergradient(problem, step, x, y0, inner_steps)
        values.append(problem.outer(x, y).detach())
        norms.append(g.norm())
        x = x - outer_lr * g
        if bounds is not None:
            x = x.clamp(*bounds)
    y = unroll(step, x, y0, inner_steps)
    values.append(problem.outer(x, y).detach())
    return BilevelRun(x, y, torch.stack(values), torch.stack(norms) if norms else x.new_empty(0))


def bda_counterexample(n: int = 1) -> BilevelProblem:
    """The non-singleton lower level of Liu et al. (2020): ``y = (y1, y2)``, each of size n."""
    check_range("n", n, low=1, owner="bda_counterexample")

    def outer(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = y[:n], y[n:]
        return 0.5 * ((x - y2) @ (x - y2)) ** 2 + 0.5 * ((y1 - 1) @ (y1 - 1)) ** 2

    def inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y1 = y[:n]
        return 0.5 * (y1 @ y1) - x @ y1

    return BilevelProblem(outer=outer, inner=inner)
