r"""Linear advection in the Lagrangian frame (Lagrangian PINNs, papers.md row 66).

The Eulerian problem of :mod:`trainlab.pinn.problems.advection`,
:math:`u_t + c\,u_x = 0`, :math:`u(0, x) = \sin x`, rewritten along the characteristics:
with :math:`X` the label of a characteristic (its position at :math:`t = 0`), the network has
two outputs, the state :math:`\hat u(t, X)` and the characteristic :math:`\hat x(t, X)`,
and the residuals are

.. math::  \partial_t \hat u = 0, \quad \partial_t \hat x - c = 0, \qquad
           \hat u(0, X) = \sin X, \quad \hat x(0, X) = X,

(for convection-diffusion the paper's state equation is :math:`\partial_t \hat u = \nu u_{xx}`;
with :math:`\nu = 0` it is the pure transport written here). Exact solution:
:math:`\hat u = \sin X`, :math:`\hat x = X + c t`. The reference of the problem is this pair
on the :math:`(t, X)` grid; the error that compares with an Eulerian PINN is
:func:`eulerian_error`: the predicted state against the exact Eulerian solution at the
predicted position, :math:`\hat u(t, X) - \sin(\hat x(t, X) - c t)`, which also charges
errors of the characteristic branch.

The paper's claim, checked in ``tests/pinn/test_lagrangian_advection.py``: the Eulerian PINN
fails as the speed :math:`c` grows (the solution's Kolmogorov n-width in :math:`(t, x)`
grows with :math:`c`), while in the Lagrangian frame the solution does not depend on
:math:`c` except through the linear characteristic, and training succeeds at every speed.

References:
    Mojgani, Balajewicz, Hassanzadeh, "Lagrangian PINNs: A causality-conforming solution to
    failure modes of physics-informed neural networks", 2022 (papers.md row 66): the LPINN
    formulation (two-branch architecture: state on the characteristics, characteristics)
    and its convection examples.

Deviations from the paper: the paper uses two separate branches (one network for the state,
one for the characteristics) trained by Adam; here one network with two outputs (the
branches share hidden layers unless the model is built as two networks) is trained by
whatever optimizer the run chooses (``engd`` in the test). No boundary condition is needed
in the Lagrangian frame (each characteristic carries its own value); periodicity enters
only through the evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from trainlab.errors import check_choice, check_range
from trainlab.pinn.derivatives import Jet
from trainlab.pinn.problems._problem import (
    DTYPE,
    PROBLEMS,
    SAMPLINGS,
    Problem,
    Term,
    box_sampler,
    check_count,
    slice_sampler,
    tensor_grid,
)


def advection_lagrangian(c: float = 1.0, n_interior: int = 2000, n_initial: int = 200,
                         grid_x: int = 256, grid_t: int = 101, sampling: str = "uniform"
                         ) -> Problem:
    """Advection at speed ``c > 0`` in the Lagrangian frame: coordinates ``(t, X)``,
    outputs ``(u, x)``; ``sampling``: the collocation points of every term, ``"uniform"``
    (independent uniform points, the default) or ``"sobol"`` (scrambled Sobol, as for
    :func:`~trainlab.pinn.problems.burgers.burgers`), both through the task's generator."""
    check_range("c", c, low=0.0, low_open=True, owner="advection-lagrangian")
    check_choice("sampling", sampling, SAMPLINGS, owner="advection-lagrangian")
    counts = [check_count(k, v, "advection-lagrangian") for k, v in
              (("n_interior", n_interior), ("n_initial", n_initial))]
    lo, hi = (0.0, 0.0), (1.0, 2 * math.pi)

    def exact(p: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.sin(p[:, 1:2]), p[:, 1:2] + c * p[:, :1]], 1)

    def pde(j: Jet, p: torch.Tensor) -> torch.Tensor:
        return torch.cat([j.d(0)[:, :1], j.d(0)[:, 1:2] - c], 1)

    def initial(j: Jet, p: torch.Tensor) -> torch.Tensor:
        return j.u - exact(p)

    terms = (Term("pde", box_sampler(lo, hi, sampling), pde, 1, counts[0]),
             Term("initial", slice_sampler(lo, hi, 0, 0.0, sampling), initial, 0,
                  counts[1]))
    xs = torch.linspace(0.0, 2 * math.pi, grid_x + 1, dtype=DTYPE)[:-1]
    grid = tensor_grid(torch.linspace(0.0, 1.0, grid_t, dtype=DTYPE), xs)
    return Problem("advection-lagrangian", ("t", "X"), lo, hi, 2, terms, exact, grid,
                   (grid_t, grid_x), params={"c": c, "sampling": sampling},
                   boundary_value=lambda p: exact(p * torch.tensor([0.0, 1.0], dtype=p.dtype)),
                   distance=lambda p: p[:, :1])


def eulerian_error(solution: Callable[[torch.Tensor], torch.Tensor], problem: Problem
                   ) -> float:
    r"""Relative L2 error, over the problem's :math:`(t, X)` grid, of the predicted state
    against the exact Eulerian solution at the predicted position,
    :math:`\|\hat u - \sin(\hat x - c t)\| / \|\sin(\hat x - c t)\|`; ``solution(points)``
    returns ``(u, x)`` columns (e.g. ``PinnModel.solution``)."""
    c = problem.params["c"]
    with torch.no_grad():
        pred = solution(problem.grid)
        truth = torch.sin(pred[:, 1] - c * problem.grid[:, 0])
        return float((pred[:, 0] - truth).norm() / truth.norm())


PROBLEMS.register("advection-lagrangian", advection_lagrangian, papers=(66,),
                  summary="advection u_t + c u_x = 0 in the Lagrangian frame: state and "
                          "characteristic outputs (Lagrangian PINN)")
