"""Rows 107 (InitNO) and 61 (FIND): the shared noise distribution against torch.distributions,
the KL alignment, the clipped-ratio loss, a policy-gradient run on a toy reward with a known
optimum, and the digits model's guidance and classifier."""

from __future__ import annotations

import torch
from torch.distributions import Normal, kl_divergence

from trainlab.diffusion.chen2024_find import find, find_policy_loss
from trainlab.diffusion.digits_prior import digits_model
from trainlab.diffusion.guo2024_initno import optimize_noise
from trainlab.diffusion.noise_distribution import NoiseDistribution


def _dist(g):
    d = NoiseDistribution((5,))
    with torch.no_grad():
        d.mu.copy_(torch.randn(5, generator=g, dtype=torch.float64))
        d.log_var.copy_(0.5 * torch.randn(5, generator=g, dtype=torch.float64))
    return d


def test_noise_distribution_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 5, generator=g, dtype=torch.float64)
    assert torch.equal(NoiseDistribution((5,)).reparameterize(z), z)  # identity at init
    d = _dist(g)
    ref = Normal(d.mu.detach(), d.std.detach())
    x = torch.randn(4, 5, generator=g, dtype=torch.float64)
    assert torch.allclose(d.log_prob(x), ref.log_prob(x).sum(1), atol=1e-12)
    assert torch.allclose(d.log_prob(x, reduce="mean"), ref.log_prob(x).mean(1), atol=1e-12)
    std = Normal(torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(d.kl_to_standard(), kl_divergence(ref, std).mean(), atol=1e-12)


def test_initno_round_lowers_the_score_and_keeps_the_kl_small():
    v = torch.linspace(-1, 1, 16, dtype=torch.float64)
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def score(x):
        return x @ v

    out, sc, kl = optimize_noise(score, z, steps=10)
    assert (sc < score(z)).all() and kl <= 1e-3 + 1e-12


def test_clipped_ratio_kills_the_policy_gradient_outside_the_band():
    d = NoiseDistribution((8,))
    with torch.no_grad():
        d.mu.fill_(1.0)  # far from N(0, I): the averaged log-ratio is large
    z = torch.full((2, 8), 3.0, dtype=torch.float64)
    loss = find_policy_loss(d, z, torch.ones(2, dtype=torch.float64), kl_weight=0.0)
    loss.backward()
    assert torch.count_nonzero(d.mu.grad) == 0 and torch.count_nonzero(d.log_var.grad) == 0
    d.zero_grad()
    with torch.no_grad():
        d.mu.fill_(0.1)  # ratio exp(-0.005) at z = 0: inside [0.8, 1.2]
    find_policy_loss(d, torch.zeros(2, 8, dtype=torch.float64),
                     torch.ones(2, dtype=torch.float64), kl_weight=0.0).backward()
    assert torch.count_nonzero(d.mu.grad) > 0  # inside the band it flows


def test_find_moves_the_policy_toward_the_reward_optimum():
    target = torch.tensor([0.8, -0.8, 0.0, 0.5], dtype=torch.float64)

    def reward(z, gen):
        return -(z - target).pow(2).sum(1)

    res = find(reward, (4,), iterations=300, batch=16, lr=1e-2, value_lr=1e-2,
               generator=torch.Generator().manual_seed(0))
    mu = res.policy.mu.detach()
    assert torch.dot(mu, target) > 0.5 * target.pow(2).sum()
    assert (mu - target).norm() < 0.5 * target.norm()


def test_digits_model_guidance_and_classifier():
    m = digits_model()
    g = torch.Generator().manual_seed(0)
    x, lab = m.mixture.sample(300, generator=g, return_labels=True)
    assert (m.predicted(x) == lab).double().mean() > 0.9
    xt = torch.randn(5, 64, generator=g, dtype=torch.float64)
    t = torch.full((5,), 400)
    full = m.guided_denoiser(3, 1.0)(xt, t)
    assert torch.allclose(full, m.components[3].denoiser(m.schedule)(xt, t), atol=1e-12)
    assert torch.allclose(m.guided_denoiser(3, 0.0)(xt, t), m.mixture.denoiser(m.schedule)(xt, t),
                          atol=1e-12)
