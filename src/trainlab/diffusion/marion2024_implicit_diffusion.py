r"""Implicit Diffusion: optimise the parameters of a sampler through its samples in one loop,
sampling and optimising at the same time, instead of re-sampling to convergence for every
parameter update.

"Implicit Diffusion: Efficient Optimization through Stochastic Sampling" (Marion, Korba,
Bartlett, Blondel, De Bortoli, Doucet, Llinares-López, Paquette & Berthet, AISTATS 2025,
papers.md row 119). Problem: :math:`\max_\theta F(\theta) = E_{x\sim\pi_\theta}[R(x)]` with
:math:`\pi_\theta \propto e^{-V(x,\theta)}` the stationary law of Langevin dynamics. Since
:math:`\nabla_\theta F = -\mathrm{Cov}_{\pi_\theta}(R, \nabla_\theta V)`, one loop can carry a
population of particles and the parameters together (the paper's single-loop Langevin
algorithm, as released):

.. math::
    x \leftarrow x - \gamma\nabla_x V(x,\theta) + \sqrt{2\gamma}\,\xi, \qquad
    \theta \leftarrow \theta + \eta\,[-\overline{R\,\nabla_\theta V} + \bar R\;
    \overline{\nabla_\theta V}]

(bars: means over the particles). The nested-loop baseline runs the sampler for K steps from
fresh particles before each parameter update, so at an equal budget of Langevin steps it
makes K times fewer updates.

The released experiment (our defaults): 2-D, energy
:math:`V(x,\theta) = -\log\sum_k \mathrm{softmax}(\theta)_k\, e^{-\|x - c_k\|^2/2}` with six
centres :math:`c_k` on a hexagon of radius 4, :math:`\theta_0 = (1.5, 0, 1.5, 0, 1.5, 0)`,
reward :math:`R(x) = 1[x_1 \ge 0]\, e^{-\|x - (4, 3.8)\|^2/20} / 2.5`, B = 1000 particles,
:math:`\gamma = 0.2`, :math:`\eta = 0.1`, 5000 steps. :math:`\pi_\theta` is then exactly the
mixture :math:`\sum_k \mathrm{softmax}(\theta)_k N(c_k, I)`, so :math:`F(\theta) =
\sum_k \mathrm{softmax}(\theta)_k r_k` with :math:`r_k = E_{N(c_k, I)}[R]` by quadrature
(:func:`exact_objective`).

Deviations from the paper: only the Langevin experiment is ported (not the finite-horizon
denoising-diffusion version with its queue of batches); the reference-regularisation term of
the code (lambda = 0 by default) is left out; the nested loop restarts its particles from
N(0, 4 I) (the code's reference sampler) before every update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from trainlab.diffusion._registry import DIFFUSION
from trainlab.errors import check_range

TARGET = (4.0, 3.8)


def hexagon_centres(radius: float = 4.0) -> torch.Tensor:
    """The six centres ``radius * (cos, sin)(k pi / 3)``, ``(6, 2)`` float64."""
    ang = torch.arange(6, dtype=torch.float64) * math.pi / 3
    return radius * torch.stack([ang.cos(), ang.sin()], 1)


def reward(x: torch.Tensor) -> torch.Tensor:
    """The released reward ``1[x1 >= 0] exp(-||x - (4, 3.8)||^2 / 20) / 2.5``."""
    d2 = (x - torch.tensor(TARGET, dtype=x.dtype)).pow(2).sum(-1)
    return (x[..., 0] >= 0).to(x.dtype) * torch.exp(-d2 / 20) / 2.5


def energy_grads(x: torch.Tensor, theta: torch.Tensor, centres: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`\nabla_x V = \sum_k p_k (x - c_k)` and :math:`\nabla_\theta V = w - p` per
    particle, with :math:`w = \mathrm{softmax}(\theta)` and responsibilities
    :math:`p_k \propto w_k e^{-\|x - c_k\|^2/2}`."""
    logw = torch.log_softmax(theta, 0)
    diff = x[:, None, :] - centres  # (B, K, 2)
    p = torch.softmax(logw - 0.5 * diff.pow(2).sum(-1), dim=1)
    return (p[..., None] * diff).sum(1), logw.exp() - p


def component_rewards(centres: torch.Tensor, *, half_width: float = 12.0, points: int = 601
                      ) -> torch.Tensor:
    """:math:`r_k = E_{N(c_k, I)}[R]` by the midpoint rule on a ``points`` x ``points`` grid
    over ``[-half_width, half_width]^2``."""
    g = torch.linspace(-half_width, half_width, points, dtype=torch.float64)
    h = (g[1] - g[0]).item()
    xx = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    dens = torch.exp(-0.5 * (xx[:, None, :] - centres).pow(2).sum(-1)) / (2 * math.pi)
    return (reward(xx)[:, None] * dens).sum(0) * h * h


def exact_objective(theta: torch.Tensor, centres: torch.Tensor,
                    rewards: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`F(\theta) = \sum_k \mathrm{softmax}(\theta)_k r_k` (``rewards``: the
    :func:`component_rewards` of ``centres``, computed if not given); differentiable in
    :math:`\theta`."""
    rk = component_rewards(centres) if rewards is None else rewards
    return torch.softmax(theta, 0) @ rk


def covariance_gradient(rewards: torch.Tensor, grad_theta_v: torch.Tensor) -> torch.Tensor:
    r"""The particle estimate of :math:`\nabla_\theta F = -\mathrm{Cov}(R, \nabla_\theta V)`:
    :math:`-\overline{R\nabla_\theta V} + \bar R\,\overline{\nabla_\theta V}`."""
    return -(rewards[:, None] * grad_theta_v).mean(0) + rewards.mean() * grad_theta_v.mean(0)


@dataclass(frozen=True)
class ImplicitRun:
    """The parameter after each update and the number of Langevin steps spent by then."""

    thetas: list[torch.Tensor]
    langevin_steps: list[int]


def single_loop(theta0: torch.Tensor, *, steps: int = 5000, particles: int = 1000,
                gamma: float = 0.2, lr: float = 0.1, centres: torch.Tensor | None = None,
                generator: torch.Generator | None = None, record_every: int = 50
                ) -> ImplicitRun:
    """The single-loop algorithm (module docstring): one Langevin step and one parameter
    update per iteration; particles start from N(0, 4 I)."""
    check_range("gamma", gamma, low=0.0, low_open=True, owner="single_loop")
    c = hexagon_centres() if centres is None else centres
    theta = theta0.clone().to(torch.float64)
    x = 2 * torch.randn(particles, 2, generator=generator, dtype=torch.float64)
    thetas, spent = [theta.clone()], [0]
    for k in range(1, steps + 1):
        gx, gt = energy_grads(x, theta, c)
        theta = theta + lr * covariance_gradient(reward(x), gt)
        x = x - gamma * gx + math.sqrt(2 * gamma) * torch.randn(x.shape, generator=generator,
                                                                dtype=torch.float64)
        if k % record_every == 0 or k == steps:
            thetas.append(theta.clone())
            spent.append(k)
    return ImplicitRun(thetas, spent)


def nested_loop(theta0: torch.Tensor, *, steps: int = 5000, inner: int = 100,
                particles: int = 1000, gamma: float = 0.2, lr: float = 0.1,
                centres: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> ImplicitRun:
    """The nested-loop baseline at the same budget: ``steps // inner`` updates, each after
    ``inner`` Langevin steps from fresh N(0, 4 I) particles at the current parameter."""
    check_range("inner", inner, low=1, owner="nested_loop")
    c = hexagon_centres() if centres is None else centres
    theta = theta0.clone().to(torch.float64)
    thetas, spent = [theta.clone()], [0]
    for k in range(steps // inner):
        x = 2 * torch.randn(particles, 2, generator=generator, dtype=torch.float64)
        for _ in range(inner):
            gx, _ = energy_grads(x, theta, c)
            x = x - gamma * gx + math.sqrt(2 * gamma) * torch.randn(
                x.shape, generator=generator, dtype=torch.float64)
        _, gt = energy_grads(x, theta, c)
        theta = theta + lr * covariance_gradient(reward(x), gt)
        thetas.append(theta.clone())
        spent.append((k + 1) * inner)
    return ImplicitRun(thetas, spent)


DIFFUSION.register("implicit-diffusion", single_loop, papers=(119,),
                   summary="single-loop joint sampling and optimization of a Langevin "
                           "sampler's parameters (Implicit Diffusion)")

__all__ = ["ImplicitRun", "component_rewards", "covariance_gradient", "energy_grads",
           "exact_objective", "hexagon_centres", "nested_loop", "reward", "single_loop"]
