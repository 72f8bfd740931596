r"""Initial-value problems of Hamiltonian ODEs, the set of papers.md row 13.

"Solving physics-based initial value problems with unsupervised machine learning"
(Mattheakis, Joy, Protopapas; papers.md row 13) trains a network of time alone on the
residual :math:`\dot u - F(u)`, with the initial condition exact by construction
(:math:`u(t) = u_0 + (1 - e^{-t}) N(t)`, available here as the hard constraint, see
:mod:`trainlab.pinn.constraints`), and judges it by energy conservation. Problems:

* ``"oscillator"``: :math:`\dot x = p, \ \dot p = -\omega^2 x`, closed form;
  energy :math:`(p^2 + \omega^2 x^2)/2`.
* ``"kepler"``: a Kepler orbit of eccentricity ``e`` (period :math:`2\pi`),
  :math:`\dot q = p, \ \dot p = -q/|q|^3`, from perihelion; energy :math:`|p|^2/2 - 1/|q|`.
  Reference: SciPy's DOP853 at ``rtol = 1e-10``; its error floor is measured against
  ``rtol / 256`` (an 8th-order method: a 2x finer step).

Collocation: independent uniform times in :math:`[0, T]` from the task's generator. These
problems take no ``sampling=`` parameter: the box problems' ``"sobol"`` choice is not wired
here (in one dimension it is close to stratified sampling; not measured).

Deviations from the paper: the network and training are trainlab's; only the problems, the
exact-initial-condition parametrisation and the energy metric follow the paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.integrate import solve_ivp

from trainlab.errors import check_range
from trainlab.pinn.derivatives import Jet
from trainlab.pinn.problems._problem import DTYPE, PROBLEMS, Problem, Term, check_count

Field = Callable[[torch.Tensor], torch.Tensor]


def _ivp(name: str, u0: torch.Tensor, field: Field, energy: Field,
         reference: Callable[[torch.Tensor], torch.Tensor],
         refined: Callable[[torch.Tensor], torch.Tensor] | None, horizon: float,
         n_interior: int, grid_points: int, params: dict) -> Problem:
    n_interior = check_count("n_interior", n_interior, name)
    check_range("grid_points", grid_points, low=2, owner=name)
    m = len(u0)

    def ode(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return j.d(0) - field(j.u)

    def initial(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return j.u - u0.to(j.u.dtype)

    def sample(n: int, g: torch.Generator | None) -> torch.Tensor:
        return horizon * torch.rand(n, 1, generator=g, dtype=DTYPE)

    terms = (Term("pde", sample, ode, 1, n_interior),
             Term("initial", lambda n, g: torch.zeros(n, 1, dtype=DTYPE), initial, 0, 1))
    grid = torch.linspace(0.0, horizon, grid_points, dtype=DTYPE)[:, None]
    return Problem(name, ("t",), (0.0,), (horizon,), m, terms, reference, grid, (grid_points,),
                   refined, params=params,
                   boundary_value=lambda x: u0.to(x.dtype).expand(len(x), m),
                   distance=lambda x: 1 - torch.exp(-x),
                   conserved=lambda u: energy(u))


def oscillator(omega: float = 1.0, x0: float = 1.0, p0: float = 0.0, horizon: float = 2 * math.pi,
               n_interior: int = 200, grid_points: int = 1001) -> Problem:
    """The harmonic oscillator with frequency ``omega`` on ``[0, horizon]``."""
    check_range("omega", omega, low=0.0, low_open=True, owner="oscillator")
    check_range("horizon", horizon, low=0.0, low_open=True, owner="oscillator")
    u0 = torch.tensor([x0, p0], dtype=DTYPE)

    def exact(t: torch.Tensor) -> torch.Tensor:
        c, s = torch.cos(omega * t), torch.sin(omega * t)
        return torch.cat([x0 * c + p0 / omega * s, -x0 * omega * s + p0 * c], 1)

    def field(u: torch.Tensor) -> torch.Tensor:
        return torch.stack([u[:, 1], -omega ** 2 * u[:, 0]], 1)

    def energy(u: torch.Tensor) -> torch.Tensor:
        return 0.5 * (u[..., 1] ** 2 + omega ** 2 * u[..., 0] ** 2)

    return _ivp("oscillator", u0, field, energy, exact, None, horizon, n_interior, grid_points,
                {"omega": omega, "x0": x0, "p0": p0, "horizon": horizon})


def kepler_orbit(t: torch.Tensor, e: float, rtol: float) -> torch.Tensor:
    """The Kepler orbit (``q``, ``p``) at times ``t`` ``(n, 1)`` by DOP853, ``(n, 4)``."""
    y0 = [1 - e, 0.0, 0.0, math.sqrt((1 + e) / (1 - e))]

    def rhs(_: float, y: np.ndarray) -> np.ndarray:
        r3 = (y[0] ** 2 + y[1] ** 2) ** 1.5
        return np.array([y[2], y[3], -y[0] / r3, -y[1] / r3])

    ts = t[:, 0].detach().cpu().numpy()
    order = np.argsort(ts)
    sol = solve_ivp(rhs, (0.0, float(ts.max()) if len(ts) else 0.0), y0, method="DOP853",
                    rtol=rtol, atol=rtol, dense_output=True)
    out = np.empty((len(ts), 4))
    out[order] = sol.sol(ts[order]).T
    return torch.as_tensor(out, dtype=t.dtype)


def kepler(e: float = 0.5, horizon: float = 2 * math.pi, rtol: float = 1e-10,
           n_interior: int = 400, grid_points: int = 1001) -> Problem:
    """One Kepler orbit of eccentricity ``e`` in [0, 1), starting at perihelion."""
    check_range("e", e, low=0.0, high=1.0, high_open=True, owner="kepler")
    check_range("rtol", rtol, low=1e-14, high=1e-3, owner="kepler")
    u0 = torch.tensor([1 - e, 0.0, 0.0, math.sqrt((1 + e) / (1 - e))], dtype=DTYPE)

    def field(u: torch.Tensor) -> torch.Tensor:
        r3 = (u[:, 0] ** 2 + u[:, 1] ** 2) ** 1.5
        return torch.stack([u[:, 2], u[:, 3], -u[:, 0] / r3, -u[:, 1] / r3], 1)

    def energy(u: torch.Tensor) -> torch.Tensor:
        return 0.5 * (u[..., 2] ** 2 + u[..., 3] ** 2) - (u[..., 0] ** 2 + u[..., 1] ** 2
                                                          ).rsqrt()

    return _ivp("kepler", u0, field, energy, lambda t: kepler_orbit(t, e, rtol),
                lambda t: kepler_orbit(t, e, rtol / 256), horizon, n_interior, grid_points,
                {"e": e, "horizon": horizon, "rtol": rtol})


PROBLEMS.register("oscillator", oscillator, papers=(13,),
                  summary="harmonic oscillator IVP (closed form; energy conservation)")
PROBLEMS.register("kepler", kepler, papers=(13,),
                  summary="Kepler orbit IVP (DOP853 reference; energy conservation)")
