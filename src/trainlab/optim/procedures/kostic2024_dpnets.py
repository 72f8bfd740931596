r"""Deep projection networks (DPNets): learn features :math:`\phi` of a stochastic process whose
span is (nearly) invariant under its transfer operator, then read the operator's eigenvalues
off a ridge regression on those features.

From pairs :math:`(x_t, x_{t+\Delta t})` and centred features, with covariances
:math:`C_X = \mathbb{E}[\phi(x_t)\phi(x_t)^\top]`, :math:`C_Y` (same at :math:`t+\Delta t`)
and :math:`C_{XY} = \mathbb{E}[\phi(x_t)\phi(x_{t+\Delta t})^\top]` (all divided by
:math:`N`):

.. math::
    P = \operatorname{tr}(C_X^{-1} C_{XY} C_Y^{-1} C_{YX}) \;\text{(projection score, VAMP-2)},
    \qquad
    S = \frac{\|C_{XY}\|_F^2}{\|C_X\|_2 \|C_Y\|_2} \le P \;\text{(relaxed score)},

trained by maximising :math:`S - \tfrac{\gamma}{2}(R(C_X) + R(C_Y))` with the metric-distortion
penalty :math:`R(C) = \tfrac{1}{m}\sum_i (\lambda_i^2 - \lambda_i - \ln\lambda_i)` over the
eigenvalues of :math:`C` (zero, with zero gradient, at :math:`C = I`). The operator on the
features is :math:`K = (C_X + \epsilon I)^{-1} C_{XY}`; its eigenvalues estimate the transfer
operator's (for Ornstein-Uhlenbeck :math:`dX = -\theta X dt + \sqrt{2} dW`:
:math:`e^{-n\theta\Delta t}`, Hermite eigenfunctions; :func:`ou_pairs` samples it exactly).

References:
    Kostic, Novelli, Grazzi, Lounici, Pontil. "Learning invariant representations of
    time-homogeneous stochastic dynamical systems", ICLR 2024 (papers.md row 112): the
    projection score, its relaxed differentiable version and the metric-distortion
    regulariser; the authors' kooplearn library for the covariance conventions.

Deviations from the paper:
    Eigenvalues of the covariances are floored at ``eps`` before the logarithm (the paper's
    code floors them too); ``gamma = 1`` as there. The operator is fitted by plain ridge
    regression (kooplearn offers reduced-rank variants). Only the discrete-time, relaxed
    objective is implemented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from trainlab.errors import check_range


def covariances(fx: torch.Tensor, fy: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Centred ``(C_X, C_Y, C_XY)`` of features ``(N, m)`` at ``t`` and ``t + dt``."""
    n = fx.shape[0]
    fx, fy = fx - fx.mean(0), fy - fy.mean(0)
    return fx.T @ fx / n, fy.T @ fy / n, fx.T @ fy / n


def projection_score(fx: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
    """``P = tr(C_X^-1 C_XY C_Y^-1 C_YX)`` (VAMP-2; at most ``m``)."""
    cx, cy, cxy = covariances(fx, fy)
    return torch.trace(torch.linalg.solve(cx, cxy) @ torch.linalg.solve(cy, cxy.T))


def relaxed_score(fx: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
    """``S = ||C_XY||_F^2 / (||C_X||_2 ||C_Y||_2)`` (``S <= P``)."""
    cx, cy, cxy = covariances(fx, fy)
    return (cxy**2).sum() / (torch.linalg.matrix_norm(cx, 2) * torch.linalg.matrix_norm(cy, 2))


def metric_distortion(cov: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """``R(C) = mean_i (l_i^2 - l_i - ln l_i)`` over the eigenvalues ``l_i >= eps`` of ``C``."""
    lam = torch.linalg.eigvalsh(cov).clamp_min(eps)
    return (lam**2 - lam - torch.log(lam)).mean()


def dpnets_loss(fx: torch.Tensor, fy: torch.Tensor, *, gamma: float = 1.0) -> torch.Tensor:
    """``-(S - gamma/2 (R(C_X) + R(C_Y)))``: the quantity to minimise."""
    cx, cy, _ = covariances(fx, fy)
    return -(relaxed_score(fx, fy) - 0.5 * gamma * (metric_distortion(cx) + metric_distortion(cy)))


def operator_eigenvalues(fx: torch.Tensor, fy: torch.Tensor, *, ridge: float = 1e-6
                         ) -> torch.Tensor:
    """Eigenvalues of ``K = (C_X + ridge I)^-1 C_XY`` sorted by modulus, largest first."""
    cx, _, cxy = covariances(fx.detach(), fy.detach())
    k = torch.linalg.solve(cx + ridge * torch.eye(cx.shape[0], dtype=cx.dtype), cxy)
    ev = torch.linalg.eigvals(k)
    return ev[torch.argsort(ev.abs(), descending=True)]


def ou_pairs(n: int, *, theta: float = 1.0, dt: float = 0.1,
             generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` exact pairs ``(x_t, x_{t+dt})`` of ``dX = -theta X dt + sqrt(2) dW`` from its
    stationary law ``N(0, 1)``: ``x' = e^{-theta dt} x + sqrt(1 - e^{-2 theta dt}) xi``."""
    check_range("n", n, low=2, owner="ou_pairs")
    check_range("theta", theta, low=0.0, low_open=True, owner="ou_pairs")
    check_range("dt", dt, low=0.0, low_open=True, owner="ou_pairs")
    x = torch.randn(n, 1, generator=generator, dtype=dtype)
    a = math.exp(-theta * dt)
    return x, a * x + math.sqrt(1 - a * a) * torch.randn(n, 1, generator=generator, dtype=dtype)


def ou_spectrum(count: int, *, theta: float = 1.0, dt: float = 0.1) -> torch.Tensor:
    """The transfer operator's eigenvalues ``e^{-n theta dt}``, ``n = 1..count``."""
    return torch.exp(-theta * dt * torch.arange(1, count + 1, dtype=torch.float64))


@dataclass(frozen=True)
class DPNetsFit:
    """Result of :func:`fit_dpnets`: the losses per step, the final scores and eigenvalues."""

    losses: torch.Tensor
    projection_score: float
    relaxed_score: float
    eigenvalues: torch.Tensor


def fit_dpnets(features: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int = 500,
               lr: float = 1e-2, gamma: float = 1.0, ridge: float = 1e-6) -> DPNetsFit:
    """Train ``features`` (in place: the name says so) with Adam on :func:`dpnets_loss` over
    the full batch of pairs ``(x, y)``, then score it and fit the operator."""
    check_range("steps", steps, low=0, owner="fit_dpnets")
    opt = torch.optim.Adam(features.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = dpnets_loss(features(x), features(y), gamma=gamma)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    with torch.no_grad():
        fx, fy = features(x), features(y)
        return DPNetsFit(torch.stack(losses) if losses else x.new_empty(0),
                         float(projection_score(fx, fy)), float(relaxed_score(fx, fy)),
                         operator_eigenvalues(fx, fy, ridge=ridge))
