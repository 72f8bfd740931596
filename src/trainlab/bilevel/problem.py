r"""A bilevel problem: an outer objective evaluated at a solution of an inner problem,

.. math::
    \min_x \; F(x, y) \quad \text{s.t.} \quad y \in \arg\min_{y'} f(x, y').

``outer`` is :math:`F` and ``inner`` is :math:`f`, both scalar functions of flat tensors
``(x, y)``. The papers name them differently: Vicol et al. (row 60) write outer/inner
parameters :math:`(u, w)` and objectives :math:`(F, f)`; Liu et al. (row 88) upper/lower
:math:`(F, f)`; Kwon et al. (row 100) upper :math:`f` and lower :math:`g`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class BilevelProblem:
    """``outer(x, y)`` and ``inner(x, y)``: the two objectives (scalar tensors)."""

    outer: Objective
    inner: Objective


@dataclass(frozen=True)
class BilevelRun:
    """The end of a bilevel run and its history.

    Attributes:
        x: the final outer variable. y: the final inner variable (for cold-start methods,
            the inner solution the last hypergradient used).
        outer_values: ``(outer_steps + 1,)``: ``F(x_k, y_k)`` before each outer step and at
            the end.
        hypergrad_norms: ``(outer_steps,)``: the norm of each outer step's hypergradient.
    """

    x: torch.Tensor
    y: torch.Tensor
    outer_values: torch.Tensor
    hypergrad_norms: torch.Tensor = field(default_factory=lambda: torch.empty(0))
