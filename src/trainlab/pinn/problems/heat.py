r"""The heat equation on an interval, with its sine-series solution.

.. math::  u_t = a\, u_{xx}, \ x \in (0, 1), \ t \in (0, 1], \quad u(t, 0) = u(t, 1) = 0,
           \quad u(t, x) = \sum_n b_n e^{-a n^2 \pi^2 t} \sin(n \pi x).

Two initial conditions: ``"sine"``, :math:`u_0 = \sin(\pi x)` (DeepXDE's heat example, one
term, exact) and ``"parabola"``, :math:`u_0 = x(1 - x)`, whose coefficients
:math:`b_n = 8 / (n\pi)^3` (odd ``n``) make the series infinite: the reference sums
``modes`` terms and its error floor is measured against ``2 * modes`` terms.
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
    slice_sampler,
    tensor_grid,
)

INITIAL = ("sine", "parabola")


def heat_series(x: torch.Tensor, a: float, initial: str, modes: int) -> torch.Tensor:
    """The series solution at points ``x = (t, x)``, ``(n, 1)``."""
    t, s = x[:, :1], x[:, 1:]
    if initial == "sine":
        return torch.exp(-a * math.pi ** 2 * t) * torch.sin(math.pi * s)
    n = torch.arange(1, modes + 1, 2, dtype=x.dtype)  # odd modes only
    b = 8.0 / (n * math.pi) ** 3
    return (b * torch.exp(-a * (n * math.pi) ** 2 * t) * torch.sin(n * math.pi * s)).sum(
        1, keepdim=True)


def heat(a: float = 0.4, initial: str = "sine", modes: int = 4000, n_interior: int = 2000,
         n_boundary: int = 200, n_initial: int = 200, grid_points: int = 101,
         sampling: str = "uniform") -> Problem:
    """The 1D heat problem with diffusivity ``a`` (DeepXDE's 0.4) and initial condition
    ``initial`` (``"sine"`` or ``"parabola"``); ``modes`` series terms for the parabola.
    ``sampling``: the collocation points of every term, ``"uniform"``
    (independent uniform points, the default) or ``"sobol"`` (scrambled Sobol, as for
    :func:`~trainlab.pinn.problems.burgers.burgers`), both through the task's generator."""
    check_range("a", a, low=0.0, low_open=True, owner="heat")
    check_choice("initial", initial, INITIAL, owner="heat")
    check_range("modes", modes, low=1, owner="heat")
    check_choice("sampling", sampling, SAMPLINGS, owner="heat")
    counts = [check_count(k, v, "heat") for k, v in
              (("n_interior", n_interior), ("n_boundary", n_boundary), ("n_initial", n_initial))]
    lo, hi = (0.0, 0.0), (1.0, 1.0)

    def reference(x: torch.Tensor) -> torch.Tensor:
        return heat_series(x, a, initial, modes)

    def pde(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return j.d(0) - a * j.dd(1, 1)

    def initial_term(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return j.u - reference(x)

    ts = torch.linspace(0.0, 1.0, grid_points, dtype=DTYPE)
    terms = (Term("pde", box_sampler(lo, hi, sampling), pde, 2, counts[0]),
             Term("boundary", faces_sampler(lo, hi, (1,), sampling),
                  lambda j, x: j.u, 0, counts[1]),
             Term("initial", slice_sampler(lo, hi, 0, 0.0, sampling), initial_term, 0,
                  counts[2]))
    refined = (None if initial == "sine" else
               lambda x: heat_series(x, a, initial, 2 * modes))
    return Problem("heat", ("t", "x"), lo, hi, 1, terms, reference, tensor_grid(ts, ts),
                   (grid_points, grid_points), refined,
                   params={"a": a, "initial": initial, "modes": modes,
                           "sampling": sampling},
                   boundary_value=lambda x: reference(torch.cat([0 * x[:, :1], x[:, 1:]], 1)),
                   distance=lambda x: (x[:, 0] * x[:, 1] * (1 - x[:, 1]))[:, None])


PROBLEMS.register("heat", heat, summary="1D heat equation, Dirichlet, sine-series solution")
