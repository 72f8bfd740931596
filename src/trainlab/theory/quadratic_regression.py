r"""Second-order (quadratic) regression models under gradient descent (Agarwala, Pedregosa &
Pennington, "Second-order regression models exhibit progressive sharpening to the edge of
stability", ICML 2023, papers.md row 65, Sec. 2).

The model's residuals are quadratic in the parameters :math:`\theta \in \mathbb{R}^P`:

.. math::
    z(\theta) = z_0 + J\theta + \tfrac12 Q(\theta, \theta), \qquad
    L(\theta) = \frac{1}{2D}\,\|z(\theta)\|^2,

with :math:`J \in \mathbb{R}^{D\times P}` and :math:`Q \in \mathbb{R}^{D\times P\times P}`
symmetric in its last two indices. The Jacobian :math:`J_\theta = J + Q(\theta, \cdot)` is
affine in :math:`\theta`, the NTK is :math:`K = J_\theta J_\theta^\top / D` and the Hessian is
:math:`H = (J_\theta^\top J_\theta + \sum_a z_a Q_a)/D`, so at a zero of the residual the top
eigenvalue of H equals that of K. With ``Q = 0`` the model is linear and K never changes.

Everything here is exact and dense (float64): the models are small enough for ``eigvalsh``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from trainlab.errors import ConfigError, check_range


@dataclass(frozen=True)
class QuadraticModel:
    """``z(theta) = z0 + J theta + Q(theta, theta) / 2`` (``J``: D x P, ``Q``: D x P x P,
    symmetric in its last two indices, ``z0``: D), all float64."""

    J: torch.Tensor
    Q: torch.Tensor
    z0: torch.Tensor

    def _parts(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, J_theta)`` from one contraction ``Q(theta, .)``."""
        q_theta = (self.Q.reshape(-1, self.Q.shape[2]) @ theta).reshape(self.J.shape)
        return self.z0 + (self.J + 0.5 * q_theta) @ theta, self.J + q_theta

    def residual(self, theta: torch.Tensor) -> torch.Tensor:
        return self._parts(theta)[0]

    def jacobian(self, theta: torch.Tensor) -> torch.Tensor:
        """``J + Q(theta, .)``: D x P."""
        return self._parts(theta)[1]

    def loss(self, theta: torch.Tensor) -> float:
        z = self.residual(theta)
        return float(z @ z) / (2 * len(z))

    def loss_and_gradient(self, theta: torch.Tensor) -> tuple[float, torch.Tensor]:
        z, jac = self._parts(theta)
        return float(z @ z) / (2 * len(z)), jac.T @ z / len(z)

    def gradient(self, theta: torch.Tensor) -> torch.Tensor:
        return self.loss_and_gradient(theta)[1]

    def hessian(self, theta: torch.Tensor) -> torch.Tensor:
        z, jac = self._parts(theta)
        return (jac.T @ jac + (z @ self.Q.reshape(len(z), -1)).reshape(jac.shape[1], -1)) / len(z)

    def ntk_top(self, theta: torch.Tensor) -> float:
        """Largest eigenvalue of the NTK ``J_theta J_theta^T / D``."""
        jac = self.jacobian(theta)
        return float(torch.linalg.svdvals(jac)[0] ** 2) / len(self.z0)

    def hessian_top(self, theta: torch.Tensor) -> float:
        h = self.hessian(theta)
        return float(torch.linalg.eigvalsh(0.5 * (h + h.T))[-1])


def random_quadratic_model(d: int, p: int, q_scale: float, *,
                           generator: torch.Generator | None = None) -> QuadraticModel:
    r"""A random second-order regression model: :math:`J_{ai} \sim N(0, 1/P)`,
    :math:`Q_{aij} = (G_{aij} + G_{aji}) / 2` with :math:`G_{aij} \sim N(0, q^2/P^2)`
    (``q = q_scale``), :math:`z_0 \sim N(0, 1)`. ``q_scale = 0`` gives the linear model.

    With these scalings the NTK at init has O(1) eigenvalues and the change of the Jacobian
    over a step of O(1) norm is O(q / sqrt(P)) per entry, so q sets how non-linear the model is.
    """
    for name, value in (("d", d), ("p", p)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"random_quadratic_model: {name} must be a positive int, "
                              f"got {value!r}")
    check_range("q_scale", q_scale, low=0.0, owner="random_quadratic_model")
    kw = {"generator": generator, "dtype": torch.float64}
    jac = torch.randn(d, p, **kw) / math.sqrt(p)
    g = torch.randn(d, p, p, **kw) * (q_scale / p)
    z0 = torch.randn(d, **kw)
    return QuadraticModel(jac, 0.5 * (g + g.transpose(1, 2)), z0)


@dataclass
class Trajectory:
    """Gradient descent on a quadratic model, measured every ``every`` steps and at the end:
    ``steps``, ``loss``, ``ntk`` (top NTK eigenvalue), ``hessian`` (top Hessian eigenvalue);
    ``diverged`` when the loss became non-finite or exceeded 1e8 times its initial value."""

    lr: float
    steps: np.ndarray
    loss: np.ndarray
    ntk: np.ndarray
    hessian: np.ndarray
    diverged: bool


def gd_trajectory(model: QuadraticModel, lr: float, steps: int, *, every: int = 1,
                  theta0: torch.Tensor | None = None) -> Trajectory:
    r"""Full-batch gradient descent :math:`\theta_{t+1} = \theta_t - \eta \nabla L(\theta_t)`
    from ``theta0`` (zeros by default) for ``steps`` steps."""
    check_range("lr", lr, low=0.0, low_open=True, owner="gd_trajectory")
    theta = (torch.zeros(model.J.shape[1], dtype=torch.float64) if theta0 is None
             else theta0.clone())
    rec: dict[str, list[float]] = {"steps": [], "loss": [], "ntk": [], "hessian": []}
    first = model.loss(theta)
    diverged = False
    for t in range(steps + 1):
        loss, grad = model.loss_and_gradient(theta)
        if not math.isfinite(loss) or loss > 1e8 * first:
            diverged = True
            break
        if t % every == 0 or t == steps:
            rec["steps"].append(t)
            rec["loss"].append(loss)
            rec["ntk"].append(model.ntk_top(theta))
            rec["hessian"].append(model.hessian_top(theta))
        if t < steps:
            theta = theta - lr * grad
    return Trajectory(lr, *(np.array(rec[k]) for k in ("steps", "loss", "ntk", "hessian")),
                      diverged=diverged)
