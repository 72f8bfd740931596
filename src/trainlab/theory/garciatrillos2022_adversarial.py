r"""How the optimal decision boundary of a 1-D binary classifier moves as an adversary's budget
:math:`\varepsilon` grows: an ODE started at the Bayes boundary.

For the classifier "class 1 on :math:`[b, \infty)`" and class densities :math:`\rho_0, \rho_1`
(weights included), an adversary moving each point by at most :math:`\varepsilon` causes the
risk

.. math::
    R(b, \varepsilon) = \int_{b - \varepsilon}^{\infty} \rho_0 + \int_{-\infty}^{b + \varepsilon}
    \rho_1 .

Stationarity :math:`\rho_0(b - \varepsilon) = \rho_1(b + \varepsilon)`, differentiated in
:math:`\varepsilon`, gives the boundary's evolution

.. math::
    b'(\varepsilon) = \frac{\rho_0'(b - \varepsilon) + \rho_1'(b + \varepsilon)}
                           {\rho_0'(b - \varepsilon) - \rho_1'(b + \varepsilon)},
    \qquad b(0) = b_{\mathrm{Bayes}},

which :func:`boundary_path` integrates with ``scipy.integrate.solve_ivp``. For two Gaussians
:math:`\rho_k = w_k \mathcal{N}(\mu_k, s^2)`, :math:`\Delta = \mu_1 - \mu_0 > 0`, the path is
:math:`b(\varepsilon) = \tfrac{\mu_0 + \mu_1}{2} - s^2 \ln(w_1/w_0) / (\Delta - 2\varepsilon)`
(:func:`gaussian_boundary`), valid for :math:`\varepsilon < \Delta/2`.

References:
    García Trillos, Murray. "Adversarial Classification: Necessary Conditions and Geometric
    Flows", JMLR 23, 2022 (papers.md row 6): necessary conditions for optimal adversarial
    classifiers and, in 1-D, uncoupled ODEs for the boundary points started at the Bayes
    classifier, which give the minimiser for small :math:`\varepsilon`.

Deviations from the paper:
    One boundary point (a single threshold) only; the paper also tracks several boundary
    points, which move independently until an interval vanishes, and gives a
    mean-curvature-type flow in higher dimensions. Only the abstract was read; the ODE is
    derived above from the stationarity condition.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.integrate import quad, solve_ivp
from scipy.stats import norm

from trainlab.errors import ConfigError, check_range

Density = Callable[[float], float]


def boundary_path(drho0: Density, drho1: Density, b0: float, eps: np.ndarray, *,
                  rtol: float = 1e-10, atol: float = 1e-12) -> np.ndarray:
    """Integrate ``b'(eps)`` from ``b(0) = b0`` (the Bayes boundary) and return ``b`` at the
    increasing, non-negative budgets ``eps``. ``drho0``, ``drho1``: the densities'
    derivatives."""
    eps = np.asarray(eps, dtype=float)
    if eps.ndim != 1 or np.any(np.diff(eps) <= 0) or eps[0] < 0:
        raise ConfigError("The 'eps' parameter of boundary_path must be increasing and >= 0.")

    def rhs(e: float, b: np.ndarray) -> list[float]:
        p, q = drho0(b[0] - e), drho1(b[0] + e)
        return [(p + q) / (p - q)]

    sol = solve_ivp(rhs, (0.0, float(eps[-1])), [b0], t_eval=eps, rtol=rtol, atol=atol)
    return sol.y[0]


def adversarial_risk(rho0: Density, rho1: Density, b: float, eps: float) -> float:
    """``R(b, eps)`` for the classifier "class 1 on [b, inf)" by quadrature."""
    check_range("eps", eps, low=0.0, owner="adversarial_risk")
    return quad(rho0, b - eps, np.inf)[0] + quad(rho1, -np.inf, b + eps)[0]


def gaussian_boundary(eps: np.ndarray | float, *, weights: tuple[float, float],
                      means: tuple[float, float], scale: float) -> np.ndarray:
    """The closed-form path for two Gaussians, ``(mu0 + mu1)/2 - s^2 ln(w1/w0)/(Delta - 2 eps)``."""
    delta = means[1] - means[0]
    if delta <= 0:
        raise ConfigError("gaussian_boundary needs means[1] > means[0].")
    eps = np.asarray(eps, dtype=float)
    if np.any(eps >= delta / 2):
        raise ConfigError(f"gaussian_boundary holds for eps < Delta/2 = {delta / 2:g}.")
    return (means[0] + means[1]) / 2 - scale**2 * np.log(weights[1] / weights[0]) / (
        delta - 2 * eps)


def gaussian_densities(weights: tuple[float, float], means: tuple[float, float],
                       scale: float) -> tuple[Density, Density, Density, Density]:
    """``(rho0, rho1, rho0', rho1')`` of ``w_k N(mu_k, scale^2)``."""
    def make(w: float, m: float) -> tuple[Density, Density]:
        def rho(x: float) -> float:
            return w * norm.pdf(x, m, scale)

        def drho(x: float) -> float:
            return -w * (x - m) / scale**2 * norm.pdf(x, m, scale)

        return rho, drho

    (r0, d0), (r1, d1) = make(weights[0], means[0]), make(weights[1], means[1])
    return r0, r1, d0, d1
