r"""The Allen-Cahn equation (periodic, the Raissi et al. / jaxpi setting) with an ETDRK4
Fourier reference.

.. math::  u_t = \epsilon\, u_{xx} + 5 u - 5 u^3, \ x \in [-1, 1) \text{ periodic}, \
           t \in (0, 1], \quad u(0, x) = x^2 \cos(\pi x), \quad \epsilon = 10^{-4}.

Reference: Fourier pseudo-spectral in space (``modes`` points), exponential time
differencing RK4 in time (Kassam & Trefethen, "Fourth-order time-stepping for stiff PDEs",
SIAM J. Sci. Comput. 2005: linear part :math:`L = -\epsilon k^2 + 5` exactly, the
:math:`\varphi`-functions by a 32-point contour integral), step ``dt``. Snapshots at the
evaluation times are interpolated in ``x`` by their Fourier series, so the reference is
available at any ``x`` but only at multiples of the snapshot spacing in ``t``. The error floor
is measured against ``2 * modes`` modes at the same ``dt`` (the time error of ETDRK4 at
``dt = 1e-4`` is far below the spatial one; the tests check the time convergence and the
solver against SciPy's DOP853 on a coarse grid). The initial condition's derivative
jumps at the periodic boundary, so spatial convergence is algebraic: 1024 modes are about
2e-6 from 2048 (511 modes, jaxpi's reference resolution, about 1e-5).

Periodicity in ``x`` is exact by construction: the problem declares ``x`` periodic, and
:class:`~trainlab.pinn.model.PinnModel` feeds the network :math:`(t, \cos \pi x, \sin \pi x)`
(jaxpi's exact periodic embedding), so there is no boundary term.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from trainlab.errors import ConfigError, check_choice, check_range
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


def etdrk4_coefficients(lin: np.ndarray, dt: float, contour: int = 32
                        ) -> tuple[np.ndarray, ...]:
    """``E, E2, Q, f1, f2, f3`` of ETDRK4 for the diagonal linear operator ``lin`` (Kassam &
    Trefethen 2005, eq. 2.5 and the contour-integral evaluation of their section 5)."""
    e, e2 = np.exp(dt * lin), np.exp(dt * lin / 2)
    r = np.exp(1j * math.pi * (np.arange(1, contour + 1) - 0.5) / contour)
    lr = dt * lin[:, None] + r[None, :]
    q = dt * np.real(np.mean((np.exp(lr / 2) - 1) / lr, axis=1))
    f1 = dt * np.real(np.mean((-4 - lr + np.exp(lr) * (4 - 3 * lr + lr ** 2)) / lr ** 3, 1))
    f2 = dt * np.real(np.mean((2 + lr + np.exp(lr) * (lr - 2)) / lr ** 3, axis=1))
    f3 = dt * np.real(np.mean((-4 - 3 * lr - lr ** 2 + np.exp(lr) * (4 - lr)) / lr ** 3, 1))
    return e, e2, q, f1, f2, f3


@functools.lru_cache(maxsize=8)
def allen_cahn_snapshots(eps: float, modes: int, dt: float, times: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Fourier coefficients (``rfft`` of the ``modes`` grid values) at ``times`` equispaced
    snapshots ``t = 0 .. 1``; returns ``(snapshot times, coefficients (times, modes//2+1))``."""
    x = -1 + 2 * np.arange(modes) / modes
    k = math.pi * np.fft.rfftfreq(modes, d=1.0 / modes)  # wavenumbers on a period of 2
    lin = -eps * k ** 2 + 5.0
    e, e2, q, f1, f2, f3 = etdrk4_coefficients(lin, dt)

    def nonlinear(v: np.ndarray) -> np.ndarray:
        return np.fft.rfft(-5.0 * np.fft.irfft(v, n=modes) ** 3)

    t_snap = np.linspace(0.0, 1.0, times)
    per = (t_snap[1] - t_snap[0]) / dt
    if abs(per - round(per)) > 1e-9:
        raise ConfigError(f"allen-cahn: dt={dt} must divide the snapshot spacing "
                          f"{t_snap[1] - t_snap[0]}")
    v = np.fft.rfft(x ** 2 * np.cos(math.pi * x))
    out = [v]
    for _ in range(times - 1):
        for _ in range(round(per)):
            nv = nonlinear(v)
            a = e2 * v + q * nv
            na = nonlinear(a)
            b = e2 * v + q * na
            nb = nonlinear(b)
            c = e2 * a + q * (2 * nb - nv)
            v = e * v + nv * f1 + 2 * (na + nb) * f2 + nonlinear(c) * f3
        out.append(v)
    return t_snap, np.stack(out)


def fourier_eval(coeffs: np.ndarray, modes: int, x: np.ndarray) -> np.ndarray:
    """The real Fourier series with ``rfft`` coefficients ``coeffs`` (grid of ``modes``
    points on [-1, 1)) at points ``x``."""
    j = np.arange(coeffs.shape[-1])
    w = np.full(len(j), 2.0)
    w[0] = 1.0
    if modes % 2 == 0:
        w[-1] = 1.0  # the Nyquist mode appears once
    phase = np.exp(1j * math.pi * np.outer(x + 1, j))
    return (phase * (w * coeffs)).real.sum(1) / modes


def allen_cahn_reference(pts: torch.Tensor, eps: float, modes: int, dt: float, times: int
                         ) -> torch.Tensor:
    """The ETDRK4 reference at points ``(t, x)`` whose ``t`` lie on the snapshot times
    (points on the solver's grid are read off it; others use the Fourier series)."""
    t_snap, coeffs = allen_cahn_snapshots(eps, modes, dt, times)
    t, x = pts[:, 0].detach().cpu().numpy(), pts[:, 1].detach().cpu().numpy()
    idx = np.rint(t * (times - 1)).astype(int)
    if len(t) and np.abs(t_snap[np.clip(idx, 0, times - 1)] - t).max() > 1e-9:
        raise ConfigError(f"allen-cahn: the reference exists only at t = k/{times - 1}; "
                          "evaluate it on the problem's grid")
    table = np.fft.irfft(coeffs, n=modes, axis=1)  # (times, modes) on x = -1 + 2 i / modes
    pos = (x + 1) * modes / 2
    node = np.rint(pos).astype(int)
    on_grid = np.abs(pos - node) < 1e-9
    out = np.empty(len(t))
    out[on_grid] = table[idx[on_grid], node[on_grid] % modes]
    for i in np.unique(idx[~on_grid]):
        rows = (~on_grid) & (idx == i)
        out[rows] = fourier_eval(coeffs[i], modes, x[rows])
    return torch.as_tensor(out, dtype=pts.dtype)[:, None]


def allen_cahn(eps: float = 1e-4, modes: int = 1024, dt: float = 1e-4, n_interior: int = 8000,
               n_initial: int = 256, grid_x: int = 512, grid_t: int = 201,
               sampling: str = "uniform") -> Problem:
    """The periodic Allen-Cahn problem (defaults: jaxpi's equation and 201 x 512 grid).

    The reference is computed on first use (seconds to a minute for 1024 modes; cached per
    setting for the process). ``sampling``: the collocation points of every term, ``"uniform"``
    (independent uniform points, the default) or ``"sobol"`` (scrambled Sobol, as for
    :func:`~trainlab.pinn.problems.burgers.burgers`), both through the task's generator."""
    check_range("eps", eps, low=0.0, low_open=True, owner="allen_cahn")
    check_range("modes", modes, low=16, owner="allen_cahn")
    check_range("dt", dt, low=0.0, low_open=True, owner="allen_cahn")
    check_choice("sampling", sampling, SAMPLINGS, owner="allen_cahn")
    counts = [check_count(k, v, "allen_cahn") for k, v in
              (("n_interior", n_interior), ("n_initial", n_initial))]
    lo, hi = (0.0, -1.0), (1.0, 1.0)

    def pde(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return j.d(0) - eps * j.dd(1, 1) - 5 * j.u + 5 * j.u ** 3

    def initial(j: Jet, x: torch.Tensor) -> torch.Tensor:
        s = x[:, 1:2]
        return j.u - s ** 2 * torch.cos(math.pi * s)

    terms = (Term("pde", box_sampler(lo, hi, sampling), pde, 2, counts[0]),
             Term("initial", slice_sampler(lo, hi, 0, 0.0, sampling), initial, 0,
                  counts[1]))
    xs = torch.linspace(-1.0, 1.0, grid_x + 1, dtype=DTYPE)[:-1]
    grid = tensor_grid(torch.linspace(0.0, 1.0, grid_t, dtype=DTYPE), xs)
    return Problem("allen-cahn", ("t", "x"), lo, hi, 1, terms,
                   lambda p: allen_cahn_reference(p, eps, modes, dt, grid_t), grid,
                   (grid_t, grid_x),
                   lambda p: allen_cahn_reference(p, eps, 2 * modes, dt, grid_t),
                   params={"eps": eps, "modes": modes, "dt": dt, "sampling": sampling},
                   periodic={1: 2.0},
                   boundary_value=lambda p: p[:, 1:2] ** 2 * torch.cos(math.pi * p[:, 1:2]),
                   distance=lambda p: p[:, :1])


PROBLEMS.register("allen-cahn", allen_cahn,
                  summary="1D periodic Allen-Cahn eps=1e-4 (jaxpi setting), ETDRK4 reference")
