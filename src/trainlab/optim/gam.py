r"""Gradient norm Aware Minimization (GAM): SAM plus first-order flatness.

GAM penalizes the first-order flatness :math:`R^{(1)}_\rho(w) = \rho \max_{\|\delta\|\le\rho}
\|\nabla L(w+\delta)\|` beside SAM's zeroth-order sharpness. Four closure calls per step,
following the authors' procedure:

1. :math:`g_0 = \nabla L(w)`;
2. :math:`g_1 = \nabla L(w + \rho\, g_0/\|g_0\|)` (SAM's gradient);
3. :math:`d = g_1 - g_0` (a finite-difference estimate of :math:`\rho H g_0/\|g_0\|`, the
   ascent direction of :math:`\|\nabla L\|`); :math:`w_2 = w + \rho' d/\|d\|`,
   :math:`g_2 = \nabla L(w_2)`;
4. :math:`g_3 = \nabla L(w_2 + \rho\, g_2/\|g_2\|)` (SAM's gradient at the
   first-order-adversarial point).

The direction is :math:`u = \beta_1 g_1 + \beta_3 g_3`, minus :math:`\gamma` times the part of
:math:`m = g_0 + |\beta_2| g_2` orthogonal to :math:`u` (the surrogate-gap decomposition of
GSAM that the authors apply):
:math:`u \leftarrow u - \gamma\,(m - \tfrac{\langle m, u\rangle}{\|u\|^2} u)`.

References:
    Zhang, Xu, Yang, Wang, Cui. "Gradient Norm Aware Minimization Seeks First-Order Flatness
    and Improves Generalization", CVPR 2023 (papers.md row 63). Defaults from the authors'
    code: rho=0.1 (zeroth-order radius), norm_rho=0.02 (first-order radius), beta1=1,
    beta2=-1 (used as its absolute value), beta3=1, gamma=0.3.

Deviations from the paper:
    ASAM-style adaptive radii and the rho schedulers of the authors' code are not offered.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trainlab.errors import check_range
from trainlab.optim._outer import OuterOptimizer, global_norm
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.sam import ascent_direction, gradient_at


class GAM(OuterOptimizer):
    """GAM over a base optimizer (any registered name, default ``"sgd"``).

    Args:
        params, lr: as for any optimizer (``lr`` goes to the base).
        rho: SAM radius, > 0. norm_rho: radius of the gradient-norm ascent, > 0.
        beta1, beta2, beta3: weights of g1, g2 (in the projected term) and g3.
        gamma: strength of the orthogonal-component removal, in [0, 1].
        base, **base_hyper: the base optimizer and its hyper-parameters.
    """

    joint_hypers = ("rho", "norm_rho", "beta1", "beta2", "beta3", "gamma")

    def __init__(self, params: Iterable[Any], lr: float = 0.1, rho: float = 0.1,
                 norm_rho: float = 0.02, beta1: float = 1.0, beta2: float = -1.0,
                 beta3: float = 1.0, gamma: float = 0.3, base: str = "sgd", **base_hyper: Any):
        check_range("rho", rho, low=0.0, low_open=True, owner="GAM")
        check_range("norm_rho", norm_rho, low=0.0, low_open=True, owner="GAM")
        check_range("gamma", gamma, low=0.0, high=1.0, owner="GAM")
        check_range("lr", lr, low=0.0, owner="GAM")
        defaults = {"rho": rho, "norm_rho": norm_rho, "beta1": beta1, "beta2": beta2,
                    "beta3": beta3, "gamma": gamma}
        super().__init__(params, lr, defaults, base, base_hyper)

    def direction(self, closure, params, loss, grads):
        h = self.param_groups[0]
        g0 = grads
        g1 = gradient_at(closure, params, ascent_direction(params, g0, h["rho"]))
        d = [a - b for a, b in zip(g1, g0)]
        shift2 = ascent_direction(params, d, h["norm_rho"])
        g2 = gradient_at(closure, params, shift2)
        shift3 = [s + e for s, e in zip(shift2, ascent_direction(params, g2, h["rho"]))]
        g3 = gradient_at(closure, params, shift3)
        return gam_combine(g0, g1, g2, g3, h["beta1"], h["beta2"], h["beta3"], h["gamma"])


def gam_combine(g0, g1, g2, g3, beta1: float, beta2: float, beta3: float, gamma: float,
                eps: float = 1e-12):
    """GAM's final direction from its four gradients (see the module docstring)."""
    u = [beta1 * a + beta3 * b for a, b in zip(g1, g3)]
    m = [a + abs(beta2) * b for a, b in zip(g0, g2)]
    un = global_norm(u)
    inner = sum((a * b).sum() for a, b in zip(m, u))
    coef = inner / (un * un + eps)
    return [a - gamma * (b - coef * a) for a, b in zip(u, m)]


def gam(params: Iterable[Any], lr: float = 0.1, rho: float = 0.1, norm_rho: float = 0.02,
        beta1: float = 1.0, beta2: float = -1.0, beta3: float = 1.0, gamma: float = 0.3,
        base: str = "sgd", **base_hyper: Any) -> GAM:
    """Gradient norm Aware Minimization over a registered base optimizer."""
    return GAM(params, lr=lr, rho=rho, norm_rho=norm_rho, beta1=beta1, beta2=beta2,
               beta3=beta3, gamma=gamma, base=base, **base_hyper)


OPTIMIZERS.register("gam", gam, papers=(63,),
                    summary="Gradient norm Aware Minimization (first-order flatness) over a base")
