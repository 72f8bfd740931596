r"""FIND: fine-tune the *distribution* of the initial noise by policy optimisation, leaving the
diffusion model frozen.

"FIND: Fine-tuning Initial Noise Distribution with Policy Optimization for Diffusion Models"
(Chen, Zhang, Hu, Zeng, Wang & Zhang, ACM MM 2024, papers.md row 61). Generation is a
one-step decision process: the policy :math:`\pi_\theta = N(\mu, \mathrm{diag}\,\sigma^2)`
draws the initial noise z, the frozen sampler maps it to an image x, and a reward model scores
x. The policy is trained with a PPO-style clipped ratio against the original distribution
:math:`\pi_{old} = N(0, I)` and a learned reward baseline ("reward calibration"):

.. math:: L(\theta) = -w_r\,\hat A\ \mathrm{clip}(\rho, 1-\epsilon, 1+\epsilon)
          + w_{kl}\,\mathrm{mean}(\mu^2 + (\sigma - 1)^2),\qquad
          \rho = \exp(\overline{\log\pi_\theta(z)} - \overline{\log\pi_{old}(z)}),

with :math:`\hat A = r - V_\psi(\mu, \sigma)` and log-densities averaged over the elements
(the authors' code). The value net :math:`V_\psi` is fitted to the rewards by MSE (AdamW,
lr 1e-4, 5 steps per iteration). Defaults: :math:`w_r = 10`, :math:`w_{kl} = 0.01`,
:math:`\epsilon = 0.2`, Adam lr 1e-3 on the policy, gradient clipping 0.1, DDIM with
:math:`\eta = 1` for the rollouts.

Deviations from the paper: the reward is :math:`\log p_{clf}(c \mid x)` of a digits classifier
on a CFG digits model (:mod:`trainlab.diffusion.digits_denoiser`, or the exact prior of
:mod:`trainlab.diffusion.digits_prior`; not ImageReward on Stable Diffusion); the value net sees
only :math:`(\mu, \sigma)` (one prompt, so no text embedding); ``batch`` rollouts per iteration
(the code uses 1) to reduce the variance on a CPU budget; the clip is the hard ``clamp`` of the
code (no gradient outside the band), not PPO's min form; the gradient-norm clip 0.1 is the
script's ``clip_norm`` argument, whose call is commented out in the released training loop
(applied here; with Adam it changes little).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from trainlab.diffusion._registry import DIFFUSION
from trainlab.diffusion.noise_distribution import NoiseDistribution
from trainlab.errors import check_range

RewardFn = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def find_policy_loss(dist: NoiseDistribution, z: torch.Tensor, advantage: torch.Tensor, *,
                     reward_weight: float = 10.0, kl_weight: float = 0.01, clip: float = 0.2
                     ) -> torch.Tensor:
    """The FIND loss (module docstring) for rollouts ``z`` ``(n, ...)`` with advantages
    ``(n,)``; the reference policy is the standard normal."""
    logp = dist.log_prob(z, reduce="mean")
    logp_old = (-0.5 * (z ** 2 + torch.log(torch.tensor(2 * torch.pi, dtype=z.dtype)))
                ).flatten(1).mean(1)
    ratio = torch.exp(logp - logp_old)
    pg = -(reward_weight * advantage * ratio.clamp(1 - clip, 1 + clip)).mean()
    reg = kl_weight * (dist.mu ** 2 + (dist.std - 1) ** 2).mean()
    return pg + reg


@dataclass(frozen=True)
class FINDResult:
    """The trained policy and the mean reward of each iteration's rollouts."""

    policy: NoiseDistribution
    rewards: list[float]


def find(reward_fn: RewardFn, shape: tuple[int, ...], *, iterations: int = 150, batch: int = 16,
         lr: float = 1e-3, value_lr: float = 1e-4, value_steps: int = 5,
         reward_weight: float = 10.0, kl_weight: float = 0.01, clip: float = 0.2,
         grad_clip: float = 0.1, generator: torch.Generator | None = None) -> FINDResult:
    """Train the initial-noise policy (module docstring). ``reward_fn(z, generator)`` runs the
    frozen sampler from the noises ``z`` ``(batch, ...)`` and returns rewards ``(batch,)``."""
    check_range("iterations", iterations, low=1, owner="find")
    check_range("batch", batch, low=1, owner="find")
    dist = NoiseDistribution(shape)
    numel = dist.mu.numel()
    value = nn.Sequential(nn.Linear(2 * numel, 32), nn.Tanh(), nn.Linear(32, 1)).to(
        torch.float64)
    with torch.no_grad():
        for p in value.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=generator, dtype=torch.float64))
    opt = torch.optim.Adam(dist.parameters(), lr=lr)
    vopt = torch.optim.AdamW(value.parameters(), lr=value_lr)
    rewards = []
    for _ in range(iterations):
        z = dist.sample(batch, generator=generator)
        with torch.no_grad():
            r = reward_fn(z, generator)
        rewards.append(r.mean().item())
        state = torch.cat([dist.mu.detach().flatten(), dist.std.detach().flatten()])[None]
        for _ in range(value_steps):
            vopt.zero_grad()
            (value(state).squeeze(-1) - r).pow(2).mean().backward()
            vopt.step()
        with torch.no_grad():
            adv = r - value(state).squeeze(-1)
        opt.zero_grad()
        find_policy_loss(dist, z, adv, reward_weight=reward_weight, kl_weight=kl_weight,
                         clip=clip).backward()
        torch.nn.utils.clip_grad_norm_(dist.parameters(), grad_clip)
        opt.step()
        with torch.no_grad():
            dist.log_var.clamp_(min=2 * torch.log(torch.tensor(1e-4)).item())
    return FINDResult(dist, rewards)


DIFFUSION.register("find", find, papers=(61,),
                   summary="policy optimization of the initial-noise distribution with ratio "
                           "clipping and reward calibration (FIND)")

__all__ = ["FINDResult", "find", "find_policy_loss"]
