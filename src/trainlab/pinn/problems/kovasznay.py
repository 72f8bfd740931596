r"""Kovasznay flow: a steady Navier-Stokes solution (the test case of papers.md row 86).

.. math::
    (\mathbf u \cdot \nabla) \mathbf u + \nabla p - \tfrac{1}{Re} \Delta \mathbf u = 0, \quad
    \nabla \cdot \mathbf u = 0 \ \text{on} \ (-\tfrac12, 1) \times (-\tfrac12, \tfrac32), \\
    u = 1 - e^{\lambda x} \cos 2\pi y, \quad v = \tfrac{\lambda}{2\pi} e^{\lambda x} \sin 2\pi y,
    \quad p = \tfrac12 (1 - e^{2 \lambda x}), \quad
    \lambda = \tfrac{Re}{2} - \sqrt{\tfrac{Re^2}{4} + 4 \pi^2}

(Kovasznay, 1948), ``Re = 20`` as in "Solving Navier-Stokes with Data-free PINNs and Hard
Boundary Conditions" (papers.md row 86) and DeepXDE. Outputs ``(u, v, p)``; residuals: the two
momentum equations and continuity. Soft boundary term: ``u`` and ``v`` on the whole boundary,
``p`` on the outflow ``x = 1`` (fixing the pressure's constant). Hard constraint (row 86's
output transform): :math:`g + d\,N` with :math:`d` the product of the distances to the four
sides (normalised) and :math:`g` the transfinite (Coons) interpolation of the boundary values,
which equals them on the boundary and is not the solution inside.
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
    faces_sampler,
    tensor_grid,
)


def coons_patch(f: Callable[[torch.Tensor], torch.Tensor], lower: tuple[float, float],
                upper: tuple[float, float], x: torch.Tensor) -> torch.Tensor:
    """The transfinite interpolation of ``f``'s values on the boundary of the rectangle
    ``[lower, upper]`` at points ``x`` ``(n, 2)``: equal to ``f`` on the boundary."""
    (a, c), (b, d) = lower, upper
    s, r = ((x[:, 0] - a) / (b - a))[:, None], ((x[:, 1] - c) / (d - c))[:, None]

    def at(px: torch.Tensor | float, py: torch.Tensor | float) -> torch.Tensor:
        px = px if isinstance(px, torch.Tensor) else torch.full_like(x[:, 0], px)
        py = py if isinstance(py, torch.Tensor) else torch.full_like(x[:, 1], py)
        return f(torch.stack([px, py], 1))

    edges = ((1 - s) * at(a, x[:, 1]) + s * at(b, x[:, 1]) + (1 - r) * at(x[:, 0], c)
             + r * at(x[:, 0], d))
    corners = ((1 - s) * (1 - r) * at(a, c) + s * (1 - r) * at(b, c) + (1 - s) * r * at(a, d)
               + s * r * at(b, d))
    return edges - corners


def kovasznay(re: float = 20.0, n_interior: int = 2000, n_boundary: int = 400,
              grid_points: int = 101, sampling: str = "uniform") -> Problem:
    """Kovasznay flow at Reynolds number ``re``.

    ``sampling``: the collocation points of every term, ``"uniform"`` (independent uniform
    points, the default) or ``"sobol"`` (scrambled Sobol, as for
    :func:`~trainlab.pinn.problems.burgers.burgers`), both through the task's generator.

    Deviations from the paper: ``Re = 20`` and the domain are as stated above; the collocation
    counts (2000 interior, 400 boundary) and the evaluation grid are this library's; the problem
    defines the PDE and its constraints only (the paper's network and training are not part of it).
    The paper's text was not re-read for this paragraph.
    """
    check_range("re", re, low=0.0, low_open=True, owner="kovasznay")
    check_choice("sampling", sampling, SAMPLINGS, owner="kovasznay")
    n_interior = check_count("n_interior", n_interior, "kovasznay")
    n_boundary = check_count("n_boundary", n_boundary, "kovasznay")
    lo, hi = (-0.5, -0.5), (1.0, 1.5)
    lam = re / 2 - math.sqrt(re ** 2 / 4 + 4 * math.pi ** 2)

    def exact(x: torch.Tensor) -> torch.Tensor:
        e = torch.exp(lam * x[:, 0])
        w = 2 * math.pi * x[:, 1]
        return torch.stack([1 - e * torch.cos(w), lam / (2 * math.pi) * e * torch.sin(w),
                            0.5 * (1 - e ** 2)], 1)

    def pde(j: Jet, x: torch.Tensor) -> torch.Tensor:
        u, v = j.u[:, 0], j.u[:, 1]
        gx, gy = j.d(0), j.d(1)
        lap = j.laplacian()
        mom_x = u * gx[:, 0] + v * gy[:, 0] + gx[:, 2] - lap[:, 0] / re
        mom_y = u * gx[:, 1] + v * gy[:, 1] + gy[:, 2] - lap[:, 1] / re
        return torch.stack([mom_x, mom_y, gx[:, 0] + gy[:, 1]], 1)

    def boundary(j: Jet, x: torch.Tensor) -> torch.Tensor:
        diff = j.u - exact(x)
        outflow = (x[:, 0] == hi[0]).to(diff.dtype)
        return torch.cat([diff[:, :2], outflow[:, None] * diff[:, 2:]], 1)

    terms = (Term("pde", box_sampler(lo, hi, sampling), pde, 2, n_interior),
             Term("boundary", faces_sampler(lo, hi, (0, 1), sampling), boundary, 0,
                  n_boundary))
    grid = tensor_grid(torch.linspace(lo[0], hi[0], grid_points, dtype=DTYPE),
                       torch.linspace(lo[1], hi[1], grid_points, dtype=DTYPE))
    size = (hi[0] - lo[0]) * (hi[1] - lo[1])

    def distance(x: torch.Tensor) -> torch.Tensor:
        d = (x[:, 0] - lo[0]) * (hi[0] - x[:, 0]) * (x[:, 1] - lo[1]) * (hi[1] - x[:, 1])
        return (16 * d / size ** 2)[:, None]

    return Problem("kovasznay", ("x", "y"), lo, hi, 3, terms, exact, grid,
                   (grid_points, grid_points), params={"re": re, "sampling": sampling},
                   boundary_value=lambda x: coons_patch(exact, lo, hi, x), distance=distance)


PROBLEMS.register("kovasznay", kovasznay, papers=(86,),
                  summary="Kovasznay flow (steady Navier-Stokes, Re=20), closed form")
