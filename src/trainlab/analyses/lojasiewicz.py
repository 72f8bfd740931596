r"""Łojasiewicz gradient inequality (LGI) constants along the training trajectory, and the
trajectory-length bound they give.

"From Optimization Dynamics to Generalization Bounds via Łojasiewicz Gradient Inequality"
(Liu, Yang, Hayou & Li, TMLR 2022; papers.md row 44) assumes the *Uniform-LGI*: along the
trajectory, with constants :math:`c > 0` and :math:`\theta \in [1/2, 1)`,

.. math:: \|\nabla L(w_t)\| \ge c\,\big(L(w_t) - L^*\big)^{\theta}.

Under gradient flow this gives the convergence rates
:math:`L - L^* \le (L_0 - L^*) e^{-c^2 t}` (:math:`\theta = 1/2`, the Polyak-Łojasiewicz
case) and :math:`L - L^* \le \big((L_0 - L^*)^{1-2\theta} + c^2(2\theta-1)t\big)^{-1/(2\theta-1)}`
otherwise, and bounds the length of the whole path, hence the distance travelled from
:math:`w_0`:

.. math:: \|w_t - w_0\| \le \int_0^\infty \|\dot w\|\,dt
          \le \frac{(L_0 - L^*)^{1-\theta}}{c\,(1-\theta)}.

The paper's generalization bounds are the Rademacher complexity of the parameter ball of that
radius (model-specific: norm-based for linear and kernel regression and two-layer networks).
For the linear model :math:`x \mapsto w\cdot x` (its first application) the ball
:math:`\|w - w_0\| \le R` has empirical Rademacher complexity at most
:math:`\hat{\mathfrak R}_S \le \frac Rn\sqrt{\sum_i\|x_i\|^2}`, and for a loss with values
in :math:`[0, M]` that is :math:`\rho`-Lipschitz in the prediction, with probability
:math:`1-\delta` over the training set (:func:`linear_generalization_bound`)

.. math:: L_{test} - L_{train} \le 2\rho\,\hat{\mathfrak R}_S
          + 3M\sqrt{\frac{\log(2/\delta)}{2n}}.

This probe estimates the constants from the pairs :math:`(L_t - L^*, \|\nabla L_t\|)` seen so
far: for each :math:`\theta` of a grid on :math:`[1/2, 1)` the largest valid constant is
:math:`c(\theta) = \min_t \|\nabla L_t\| / (L_t - L^*)^\theta`; it reports the PL constant
:math:`c(1/2)`, and the :math:`\theta` whose length bound is the smallest, with that bound and
the distance actually travelled from initialization.

Deviations: the paper's loss is the full empirical risk under gradient flow; the probe uses
the step's batch loss and gradient (free: the training loop computed them), so under SGD the
constants describe the mini-batch losses. :math:`L^*` is unknown in general; it defaults to
0 (an interpolating model) and can be given. The bound is written for the linear model only
(the kernel and two-layer forms are not provided), with the textbook Rademacher bound
(Mohri, Rostamizadeh & Talwalkar, "Foundations of Machine Learning", 2nd ed., Theorem 3.5,
and Lemma 5.2's linear-class complexity) in place of the paper's own constants, which could
not be read (searched: the search tool's "pages" corpus, whose copies of arXiv 2202.10670
hold the abstract and introduction only, and the "code" corpus).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from trainlab.errors import ConfigError, check_range

THETAS = tuple(0.5 + 0.05 * i for i in range(10))


@dataclass(frozen=True)
class LGIFit:
    """Constants :math:`(c, \\theta)` valid on every pair seen and the path-length bound
    :math:`(L_0 - L^*)^{1-\\theta} / (c(1-\\theta))`."""

    theta: float
    c: float
    length_bound: float


def lgi_constants(gaps: torch.Tensor, grad_norms: torch.Tensor,
                  thetas: tuple[float, ...] = THETAS) -> torch.Tensor:
    r""":math:`c(\theta) = \min_t \|g_t\| / \mathrm{gap}_t^\theta` for each ``theta`` (pairs
    with a non-positive gap, i.e. at or below :math:`L^*`, are skipped; ``inf`` if none)."""
    if gaps.shape != grad_norms.shape or gaps.dim() != 1:
        raise ConfigError("lgi_constants: gaps and grad_norms must be 1-D tensors of the same "
                          f"length. Got shapes {tuple(gaps.shape)} and "
                          f"{tuple(grad_norms.shape)} instead.")
    for th in thetas:
        check_range("theta", th, low=0.5, high=1.0, high_open=True, owner="lgi_constants")
    keep = gaps > 0
    th = torch.tensor(thetas, dtype=gaps.dtype, device=gaps.device)
    if not bool(keep.any()):
        return torch.full_like(th, math.inf)
    ratios = grad_norms[keep, None] / gaps[keep, None] ** th
    return ratios.amin(0)


def length_bound(gap0: float, c: float, theta: float) -> float:
    r"""Gradient-flow path length bound :math:`\mathrm{gap}_0^{1-\theta} / (c(1-\theta))`."""
    check_range("theta", theta, low=0.5, high=1.0, high_open=True, owner="length_bound")
    if c <= 0:
        return math.inf
    return max(gap0, 0.0) ** (1 - theta) / (c * (1 - theta))


def gap_bound(gap0: float, c: float, theta: float, t: float) -> float:
    r"""Gradient-flow bound on :math:`L(w_t) - L^*` after flow time ``t`` under the LGI."""
    check_range("theta", theta, low=0.5, high=1.0, high_open=True, owner="gap_bound")
    if theta == 0.5:
        return gap0 * math.exp(-c * c * t)
    k = 2 * theta - 1
    return (gap0 ** -k + c * c * k * t) ** (-1 / k)


def linear_generalization_bound(radius: float, inputs: torch.Tensor, *, lipschitz: float,
                                loss_max: float, delta: float = 0.05) -> float:
    r"""High-probability bound on :math:`L_{test} - L_{train}` for a linear model that stays in
    the ball :math:`\|w - w_0\| \le` ``radius`` (e.g. :func:`length_bound`), from the
    training ``inputs`` ``(n, d)``: :math:`2\rho\frac Rn\sqrt{\sum_i\|x_i\|^2} +
    3M\sqrt{\log(2/\delta)/(2n)}` (module docstring)."""
    check_range("radius", radius, low=0.0, owner="linear_generalization_bound")
    check_range("lipschitz", lipschitz, low=0.0, owner="linear_generalization_bound")
    check_range("loss_max", loss_max, low=0.0, owner="linear_generalization_bound")
    check_range("delta", delta, low=0.0, high=1.0, low_open=True, high_open=True,
                owner="linear_generalization_bound")
    if inputs.dim() != 2 or len(inputs) == 0:
        raise ConfigError("linear_generalization_bound: inputs must be a non-empty (n, d) "
                          f"tensor. Got shape {tuple(inputs.shape)} instead.")
    n = len(inputs)
    complexity = radius / n * float(inputs.double().pow(2).sum().sqrt())
    return 2 * lipschitz * complexity + 3 * loss_max * math.sqrt(math.log(2 / delta) / (2 * n))


def fit_lgi(gaps: torch.Tensor, grad_norms: torch.Tensor, thetas: tuple[float, ...] = THETAS
            ) -> LGIFit:
    """The ``theta`` of the grid whose constants give the smallest path-length bound, with
    ``gap0 = gaps[0]``."""
    cs = lgi_constants(gaps, grad_norms, thetas).tolist()
    return best_fit(float(gaps[0]), cs, thetas)


def best_fit(gap0: float, cs: list[float], thetas: tuple[float, ...]) -> LGIFit:
    """Of the constants ``cs`` (one per ``thetas``), the pair with the smallest length bound."""
    bounds = [length_bound(gap0, c, th) for c, th in zip(cs, thetas)]
    i = min(range(len(thetas)), key=bounds.__getitem__)
    return LGIFit(thetas[i], cs[i], bounds[i])
