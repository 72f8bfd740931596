r"""Linear advection with a speed ladder.

.. math::  u_t + c\, u_x = 0, \ x \in (0, 2\pi), \ t \in (0, 1], \quad u(0, x) = \sin x,
           \quad u(t, x) = \sin(x - c t).

Large ``c`` (10, 30, 100) is where plain PINNs fail (jaxpi's example uses ``c = 100``;
"Lagrangian PINNs", Mojgani et al., 2022, papers.md row 66, study the same failure; their
Lagrangian-frame formulation is :mod:`trainlab.pinn.problems.advection_lagrangian`). The mass
:math:`\int_0^{2\pi} u\,dx` is conserved (zero).

Deviations: jaxpi imposes periodicity in ``x``; here the inflow boundary ``x = 0`` gets the
exact Dirichlet value :math:`-\sin(c t)` (well posed for ``c > 0``), so every term is a
pointwise residual.
"""

from __future__ import annotations

import math

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


def advection(c: float = 1.0, n_interior: int = 2000, n_boundary: int = 200,
              n_initial: int = 200, grid_x: int = 256, grid_t: int = 101,
              sampling: str = "uniform") -> Problem:
    """Advection at speed ``c > 0``; ``sampling``: the collocation points of every term,
    ``"uniform"`` (independent uniform points, the default) or ``"sobol"`` (scrambled Sobol,
    as for :func:`~trainlab.pinn.problems.burgers.burgers`), both through the task's
    generator."""
    check_range("c", c, low=0.0, low_open=True, owner="advection")
    check_choice("sampling", sampling, SAMPLINGS, owner="advection")
    counts = [check_count(k, v, "advection") for k, v in
              (("n_interior", n_interior), ("n_boundary", n_boundary), ("n_initial", n_initial))]
    lo, hi = (0.0, 0.0), (1.0, 2 * math.pi)

    def exact(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x[:, 1:2] - c * x[:, :1])

    def pde(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return j.d(0) + c * j.d(1)

    def matches(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return j.u - exact(x)

    terms = (Term("pde", box_sampler(lo, hi, sampling), pde, 1, counts[0]),
             Term("boundary", slice_sampler(lo, hi, 1, 0.0, sampling), matches, 0,
                  counts[1]),
             Term("initial", slice_sampler(lo, hi, 0, 0.0, sampling), matches, 0,
                  counts[2]))
    xs = torch.linspace(0.0, 2 * math.pi, grid_x + 1, dtype=DTYPE)[:-1]  # one period
    grid = tensor_grid(torch.linspace(0.0, 1.0, grid_t, dtype=DTYPE), xs)

    def inflow(x: torch.Tensor) -> torch.Tensor:  # equals u on t = 0 and on x = 0
        return torch.sin(x[:, 1:2]) - torch.sin(c * x[:, :1])

    return Problem("advection", ("t", "x"), lo, hi, 1, terms, exact, grid, (grid_t, grid_x),
                   params={"c": c, "sampling": sampling},
                   boundary_value=inflow,
                   distance=lambda x: (x[:, 0] * x[:, 1])[:, None],
                   conserved=lambda u: u[..., 0].mean(1))


PROBLEMS.register("advection", advection,
                  summary="1D advection u_t + c u_x = 0, sin(x - ct), speed ladder c")
