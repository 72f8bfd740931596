r"""The heat equation on the periodic square, with its double sine-series solution.

.. math::  u_t = D\,(u_{xx} + u_{yy}), \quad (x, y) \in [0, 2\pi)^2 \ \text{periodic}, \
           t \in (0, T],

.. math::  u_0(x, y) = g(x)\,g(y), \quad g(s) = \frac{r \sin s}{1 - 2 r \cos s + r^2}
           = \sum_{n \ge 1} r^n \sin(n s), \quad 0 < r < 1,

.. math::  u(t, x, y) = G(t, x)\, G(t, y), \quad G(t, s) = \sum_{n \ge 1} r^n
           e^{-D n^2 t} \sin(n s).

The set-up of TENG's 2D heat benchmark ("TENG: Time-Evolving Natural Gradient for Solving
PDEs with Deep Neural Nets", Chen et al., ICML 2024, papers.md row 7; as in its released
code: periodic :math:`[0, 2\pi)^2`, :math:`D = 0.1`, :math:`T = 4`) with an initial condition whose
Fourier series is infinite and known in closed form (the Poisson-kernel identity for
:math:`g`), so the reference at :math:`t > 0` is a truncated series: it sums ``modes`` terms
per axis and its error floor is measured against ``2 * modes`` terms (at :math:`t = 0` the
closed form :math:`g(x) g(y)` checks the series). The sine series also vanishes on
:math:`x, y \in \{0, \pi\}`, so the same solution solves the Dirichlet problem on
:math:`[0, \pi]^2`; the problem here is the periodic one (the network sees ``cos``/``sin``
of ``x`` and ``y``: periodicity is exact).

Deviations from the paper: TENG's initial condition is a different smooth separable
function given only by its stored Fourier coefficients; this one has closed-form
coefficients, the same period, diffusivity and horizon.
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

PERIOD = 2 * math.pi


def heat2d_factor(t: torch.Tensor, s: torch.Tensor, d: float, r: float, modes: int
                  ) -> torch.Tensor:
    r""":math:`G(t, s) = \sum_{n=1}^{modes} r^n e^{-D n^2 t} \sin(n s)`, elementwise."""
    n = torch.arange(1, modes + 1, dtype=s.dtype)
    terms = torch.exp(n * math.log(r) - d * n ** 2 * t[..., None]) * torch.sin(n * s[..., None])
    return terms.sum(-1)


def heat2d_series(x: torch.Tensor, d: float, r: float, modes: int) -> torch.Tensor:
    """The series solution at points ``x = (t, x, y)``, ``(n, 1)``."""
    t = x[:, 0]
    return (heat2d_factor(t, x[:, 1], d, r, modes) * heat2d_factor(t, x[:, 2], d, r, modes)
            )[:, None]


def heat2d_initial(x: torch.Tensor, r: float) -> torch.Tensor:
    """The closed-form initial condition :math:`g(x) g(y)` at points ``(t, x, y)``."""
    def g(s: torch.Tensor) -> torch.Tensor:
        return r * torch.sin(s) / (1 - 2 * r * torch.cos(s) + r * r)

    return (g(x[:, 1]) * g(x[:, 2]))[:, None]


def heat2d(d: float = 0.1, r: float = 0.5, horizon: float = 4.0, modes: int = 40,
           n_interior: int = 4000, n_initial: int = 1024, grid_x: int = 48,
           grid_t: int = 11, sampling: str = "uniform") -> Problem:
    """The periodic 2D heat problem with diffusivity ``d`` (TENG's 0.1), initial-condition
    decay ``r`` in (0, 1) and horizon ``horizon`` (TENG's 4); ``modes`` series terms per
    axis; evaluation grid ``grid_t`` times by ``grid_x ** 2`` periodic nodes.
    ``sampling``: the collocation points of every term, ``"uniform"``
    (independent uniform points, the default) or ``"sobol"`` (scrambled Sobol, as for
    :func:`~trainlab.pinn.problems.burgers.burgers`), both through the task's generator."""
    check_range("d", d, low=0.0, low_open=True, owner="heat-2d")
    check_range("r", r, low=0.0, high=1.0, low_open=True, high_open=True, owner="heat-2d")
    check_range("horizon", horizon, low=0.0, low_open=True, owner="heat-2d")
    check_range("modes", modes, low=1, owner="heat-2d")
    check_range("grid_x", grid_x, low=2, owner="heat-2d")
    check_range("grid_t", grid_t, low=2, owner="heat-2d")
    check_choice("sampling", sampling, SAMPLINGS, owner="heat-2d")
    counts = [check_count(k, v, "heat-2d") for k, v in
              (("n_interior", n_interior), ("n_initial", n_initial))]
    lo, hi = (0.0, 0.0, 0.0), (horizon, PERIOD, PERIOD)

    def reference(x: torch.Tensor) -> torch.Tensor:
        return heat2d_series(x, d, r, modes)

    def pde(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return j.d(0) - d * j.laplacian((1, 2))

    def initial(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return j.u - heat2d_initial(x, r)

    terms = (Term("pde", box_sampler(lo, hi, sampling), pde, 2, counts[0]),
             Term("initial", slice_sampler(lo, hi, 0, 0.0, sampling), initial, 0,
                  counts[1]))
    xs = torch.linspace(0.0, PERIOD, int(grid_x) + 1, dtype=DTYPE)[:-1]
    grid = tensor_grid(torch.linspace(0.0, horizon, int(grid_t), dtype=DTYPE), xs, xs)
    return Problem("heat-2d", ("t", "x", "y"), lo, hi, 1, terms, reference, grid,
                   (int(grid_t), int(grid_x), int(grid_x)),
                   lambda x: heat2d_series(x, d, r, 2 * modes),
                   params={"d": d, "r": r, "horizon": horizon, "modes": modes,
                           "sampling": sampling},
                   boundary_value=lambda x: heat2d_initial(x, r),
                   distance=lambda x: x[:, :1], periodic={1: PERIOD, 2: PERIOD})


PROBLEMS.register("heat-2d", heat2d, papers=(7,),
                  summary="2D periodic heat equation (TENG setting), double sine-series "
                          "solution")
