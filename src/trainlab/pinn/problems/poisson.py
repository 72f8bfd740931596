r"""Poisson's equation on the unit square with a manufactured solution (frequency ladder).

.. math::  -\Delta u = f \ \text{in } (0, 1)^2, \quad u = 0 \ \text{on the boundary},
           \quad u = \sin(k\pi x)\sin(k\pi y), \quad f = 2 (k\pi)^2 u.

The frequency ``k`` sets the difficulty: the Gram matrix of the PINN loss has a spectrum
spread like :math:`k^4` ("An operator preconditioning perspective on training in
physics-informed machine learning", De Ryck et al., 2024, papers.md row 40; its condition
number analysis is not implemented here, so the entry does not claim the row). ``k = 1`` is the
problem of "Achieving High Accuracy with PINNs via Energy Natural Gradient Descent" (Müller &
Zeinhofer, ICML 2023, section 4.1; relative L2 errors of 1e-6 to 1e-8 with ENGD). The
reference is the closed form (error floor 0).
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
    faces_sampler,
    grid_box,
    grid_faces,
    tensor_grid,
)


def poisson(k: int = 1, n_interior: int = 900, n_boundary: int = 200,
            grid_points: int = 101, sampling: str = "uniform") -> Problem:
    """The Poisson problem at frequency ``k`` (an integer, 1..8 is the ladder).

    Args:
        k: frequency of the manufactured solution, >= 1.
        n_interior, n_boundary: default collocation counts (Müller & Zeinhofer use 900
            interior and 120 boundary points).
        grid_points: evaluation grid points per axis.
        sampling: ``"uniform"`` (random, through the task's generator), ``"sobol"``
            (scrambled Sobol points through the same generator, as for
            :func:`~trainlab.pinn.problems.burgers.burgers`) or ``"grid"`` (a tensor grid of
            about ``n_interior`` interior points and ``n_boundary`` equispaced boundary
            points; deterministic).
    """
    check_range("k", k, low=1, owner="poisson")
    n_interior = check_count("n_interior", n_interior, "poisson")
    n_boundary = check_count("n_boundary", n_boundary, "poisson")
    check_range("grid_points", grid_points, low=2, owner="poisson")
    check_choice("sampling", sampling, (*SAMPLINGS, "grid"), owner="poisson")
    lo, hi, w = (0.0, 0.0), (1.0, 1.0), k * math.pi

    def exact(x: torch.Tensor) -> torch.Tensor:
        return (torch.sin(w * x[:, 0]) * torch.sin(w * x[:, 1]))[:, None]

    def pde(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return -j.laplacian() - 2 * w ** 2 * exact(x)

    def boundary(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return j.u

    axis = torch.linspace(0.0, 1.0, grid_points, dtype=DTYPE)
    if sampling == "grid":
        inner, edge = (lambda n, g: grid_box(lo, hi, n)), (lambda n, g: grid_faces(lo, hi, n))
    else:
        inner, edge = box_sampler(lo, hi, sampling), faces_sampler(lo, hi, (0, 1), sampling)
    terms = (Term("pde", inner, pde, 2, n_interior),
             Term("boundary", edge, boundary, 0, n_boundary))
    return Problem("poisson", ("x", "y"), lo, hi, 1, terms, exact, tensor_grid(axis, axis),
                   (grid_points, grid_points), params={"k": k, "sampling": sampling},
                   boundary_value=lambda x: torch.zeros(len(x), 1, dtype=x.dtype),
                   distance=lambda x: (x[:, 0] * (1 - x[:, 0]) * x[:, 1] * (1 - x[:, 1]))[:, None])


PROBLEMS.register("poisson", poisson,
                  summary="2D Poisson, manufactured sin(k pi x) sin(k pi y), frequency ladder k")
