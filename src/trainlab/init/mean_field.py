r"""Mean-field signal propagation in wide random networks: the length map, its fixed point
:math:`q^*`, the slope :math:`\chi_1`, depth scales, and the edge-of-chaos solver.

For a fully connected network with weights :math:`W_{ij} \sim \mathcal N(0, \sigma_w^2/N)` and
biases :math:`b_i \sim \mathcal N(0, \sigma_b^2)`, the pre-activation second moment obeys
(Poole et al. 2016; Schoenholz et al. 2017)

.. math::
    q^{l} = \sigma_w^2\, \mathbb E_{z}\big[\phi(\sqrt{q^{l-1}}\, z)^2\big] + \sigma_b^2,
    \qquad \chi_1 = \sigma_w^2\, \mathbb E_z\big[\phi'(\sqrt{q^*}\, z)^2\big],

with :math:`z \sim \mathcal N(0, 1)`. :math:`\chi_1 < 1` is the ordered phase (gradients
vanish), :math:`\chi_1 > 1` the chaotic phase (they explode); :math:`\chi_1 = 1` is the edge of
chaos. "Beyond IID weights" (Nait Saada, Naderi & Tanner, ICLR 2024, papers.md row 111)
shows that orthogonal, low-rank and structured-sparse ("pseudo-IID") weights reach the same
Gaussian-process limit with the variance matched, so the same recursion and the same critical
point apply to them.

Gaussian expectations are computed with a trapezoid rule on a fine grid of :math:`z` (spectrally
accurate for smooth integrands, second order at a kink such as ReLU's), in float64.
``trainlab.theory`` re-exports this module's public names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from trainlab.errors import ConfigError, check_range

Activation = Callable[[torch.Tensor], torch.Tensor]

_GRID_HALF_WIDTH = 12.0
_GRID_POINTS = 24000


def _grid() -> tuple[torch.Tensor, torch.Tensor]:
    # midpoint rule: symmetric, and z = 0 (a kink for ReLU) is never a node
    h = 2 * _GRID_HALF_WIDTH / _GRID_POINTS
    z = -_GRID_HALF_WIDTH + h * (torch.arange(_GRID_POINTS, dtype=torch.float64) + 0.5)
    w = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * h
    return z, w


_Z, _W = _grid()


def resolve_activation(activation: str | Activation) -> Activation:
    """A float64 function ``x -> phi(x)`` for a registered activation name or a callable."""
    if callable(activation):
        return activation
    from trainlab.models.activations import activation as build

    module = build(activation)
    return lambda x: module(x)


def gaussian_expectation(f: Callable[[torch.Tensor], torch.Tensor], variance: float = 1.0,
                         mean: float = 0.0) -> float:
    r""":math:`\mathbb E[f(x)]` for :math:`x \sim \mathcal N(\mathrm{mean}, \mathrm{variance})`."""
    check_range("variance", variance, low=0.0, owner="gaussian_expectation")
    x = mean + math.sqrt(variance) * _Z
    return float((f(x) * _W).sum())


def derivative(phi: Activation, order: int = 1) -> Activation:
    """The ``order``-th derivative of ``phi``, elementwise, by ``torch.func`` (ReLU gets its
    almost-everywhere derivative)."""
    check_range("order", order, low=1, owner="derivative")
    f = phi
    for _ in range(order):
        f = torch.func.grad(f)
    return torch.func.vmap(f)


def length_map(activation: str | Activation, q: float, sigma_w2: float, sigma_b2: float = 0.0
               ) -> float:
    r"""One step of the length map,
    :math:`q \mapsto \sigma_w^2 E[\phi(\sqrt q z)^2] + \sigma_b^2`."""
    phi = resolve_activation(activation)
    return sigma_w2 * gaussian_expectation(lambda x: phi(x) ** 2, q) + sigma_b2


def q_fixed_point(activation: str | Activation, sigma_w2: float, sigma_b2: float = 0.0, *,
                  q0: float = 1.0, tol: float = 1e-13) -> float:
    """The stable fixed point ``q*`` of the length map.

    Found by bracketing root search on ``map(q) - q`` (robust near criticality, where plain
    iteration crawls). With ``sigma_b2 = 0`` the origin is a fixed point; it is returned when
    it is stable (``map(q) < q`` for small ``q``). Returns ``inf`` when ``q`` grows without
    bound, and ``q0`` when every ``q`` is a fixed point (ReLU at ``sigma_w2 = 2``, no bias).
    """
    from scipy.optimize import brentq

    check_range("sigma_w2", sigma_w2, low=0.0, owner="q_fixed_point")
    check_range("sigma_b2", sigma_b2, low=0.0, owner="q_fixed_point")
    phi = resolve_activation(activation)

    def gap(q: float) -> float:  # (map(q) - q) / q: same sign as map(q) - q, scale free
        return (sigma_w2 * gaussian_expectation(lambda x: phi(x) ** 2, q) + sigma_b2) / q - 1.0

    lo = 1e-10
    g_lo = gap(lo)
    if sigma_b2 == 0.0 and abs(g_lo) < 1e-9 and abs(gap(1.0)) < 1e-9:
        return q0  # degenerate: a line of fixed points
    if g_lo < 0:
        return 0.0
    hi = 1.0
    while gap(hi) > 0:
        hi *= 4.0
        if hi > 1e12:
            return math.inf
    return float(brentq(gap, lo, hi, xtol=tol, rtol=1e-13))


def chi1(activation: str | Activation, sigma_w2: float, q: float) -> float:
    r""":math:`\chi_1 = \sigma_w^2 E[\phi'(\sqrt q z)^2]`: the mean squared singular value of one
    layer's Jacobian at pre-activation variance ``q``."""
    dphi = derivative(resolve_activation(activation))
    return sigma_w2 * gaussian_expectation(lambda x: dphi(x) ** 2, q)


@dataclass(frozen=True)
class MeanFieldPoint:
    """The mean-field state of one ``(sigma_w2, sigma_b2)`` choice.

    Attributes:
        sigma_w2, sigma_b2: weight and bias variances (weights ``N(0, sigma_w2 / fan_in)``).
        q_star: fixed point of the length map.
        chi1: slope of the correlation map at ``c = 1`` (``< 1`` ordered, ``> 1`` chaotic).
        xi_q: depth scale of convergence of ``q`` to ``q*``.
        xi_c: depth scale of correlation propagation, ``-1 / ln chi1`` (inf at criticality).
    """

    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi1: float
    xi_q: float
    xi_c: float

    @property
    def phase(self) -> str:
        if abs(self.chi1 - 1.0) < 1e-6:
            return "critical"
        return "ordered" if self.chi1 < 1.0 else "chaotic"


def mean_field_point(activation: str | Activation, sigma_w2: float, sigma_b2: float = 0.0
                     ) -> MeanFieldPoint:
    r"""``q*``, :math:`\chi_1` and the depth scales of Schoenholz et al. (2017):
    :math:`\xi_q^{-1} = -\ln(\chi_1 + \sigma_w^2 E[\phi''(\sqrt{q^*}z)\phi(\sqrt{q^*}z)])` and
    :math:`\xi_c^{-1} = -\ln \chi_1`."""
    phi = resolve_activation(activation)
    q = q_fixed_point(phi, sigma_w2, sigma_b2)
    c1 = chi1(phi, sigma_w2, q) if math.isfinite(q) else math.inf
    if math.isfinite(q) and q > 0:
        d2 = derivative(phi, order=2)
        slope = c1 + sigma_w2 * gaussian_expectation(lambda x: d2(x) * phi(x), q)
        xi_q = -1.0 / math.log(slope) if 0 < slope < 1 else math.inf
    else:
        xi_q = math.nan
    xi_c = -1.0 / math.log(c1) if 0 < c1 < 1 else math.inf
    return MeanFieldPoint(sigma_w2, sigma_b2, q, c1, xi_q, xi_c)


def critical_sigma_w2(activation: str | Activation, sigma_b2: float = 0.0, *,
                      bracket: tuple[float, float] = (1e-3, 100.0), tol: float = 1e-10) -> float:
    r"""The weight variance :math:`\sigma_w^2` that puts ``activation`` at the edge of chaos
    (:math:`\chi_1 = 1` at the fixed point :math:`q^*`) for bias variance ``sigma_b2``.

    Solved by bracketing root search (scipy's ``brentq``) on :math:`\chi_1(\sigma_w^2) - 1`,
    recomputing :math:`q^*` at each trial. Known values: ReLU 2 (any ``sigma_b2`` > 0 shifts
    nothing in :math:`\chi_1 = \sigma_w^2/2`), tanh 1 at ``sigma_b2 = 0`` and about 1.761 at
    ``sigma_b2 = 0.05``.

    Deviations from the papers: the critical point is found by root search on :math:`\chi_1 = 1`
    with Gaussian expectations by quadrature (see the module docstring); rows 111 and 3 use it as
    stated above, and neither paper's own numerical procedure was re-read for this paragraph.

    Raises:
        ConfigError: when :math:`\chi_1 - 1` does not change sign over ``bracket``.
    """
    from scipy.optimize import brentq

    check_range("sigma_b2", sigma_b2, low=0.0, owner="critical_sigma_w2")
    phi = resolve_activation(activation)

    def excess(s2: float) -> float:
        q = q_fixed_point(phi, s2, sigma_b2)
        if not math.isfinite(q):
            return math.inf
        return chi1(phi, s2, max(q, 1e-12)) - 1.0  # q* = 0: chi1 in the limit q -> 0

    lo, hi = bracket
    f_lo, f_hi = excess(lo), excess(hi)
    if not (f_lo < 0 < f_hi):
        raise ConfigError(f"critical_sigma_w2: chi1 - 1 does not change sign on sigma_w2 in "
                          f"{bracket} (got {f_lo:.3g}, {f_hi:.3g}); widen 'bracket'")
    return float(brentq(excess, lo, hi, xtol=tol, rtol=1e-12))


__all__ = ["MeanFieldPoint", "chi1", "critical_sigma_w2", "derivative", "gaussian_expectation",
           "length_map", "mean_field_point", "q_fixed_point", "resolve_activation"]
