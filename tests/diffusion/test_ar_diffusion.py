"""Row 5 (AR model with a per-token diffusion loss): generation and the error-decay measurement
with the exact Gaussian head (decay = rho(A) up to DDIM's discretisation), and a short
training run that lowers the loss and learns the backbone's direction."""

from __future__ import annotations

import math

import torch

from trainlab.diffusion.schedules import vp_schedule
from trainlab.diffusion.zhou2026_ar_diffusion import (
    ARDiffusionModel,
    ar1_sequences,
    condition_error_decay,
    train_ar_diffusion,
)

C, S = math.cos(0.6), math.sin(0.6)
A = 0.7 * torch.tensor([[C, -S], [S, C]], dtype=torch.float64)


class _ExactModel:
    """Backbone A, head = exact eps of N(c, 0.25 I) under the VP schedule."""

    def __init__(self, schedule):
        self.schedule = schedule

    def condition(self, prev):
        return prev @ A.T

    def eps(self, xt, t, cond):
        ab = self.schedule.abar(t)[:, None]
        return (1 - ab).sqrt() * (xt - ab.sqrt() * cond) / (ab * 0.25 + 1 - ab)


def test_exact_head_gives_the_processes_decay_rate():
    sched = vp_schedule()
    noise = torch.randn(16, 6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    d = condition_error_decay(_ExactModel(sched), sched, noise,
                              torch.tensor([0.5, 0.0], dtype=torch.float64), num_steps=50)
    assert abs(d.rate - 0.7) < 0.02
    assert abs(d.displacement[0] - 0.5) < 0.02  # the error passes to token 0 almost 1:1


def test_ar1_sequences_have_the_generating_dynamics():
    x = ar1_sequences(4000, 5, A, generator=torch.Generator().manual_seed(1))
    prev, nxt = x[:, :-1].reshape(-1, 2), x[:, 1:].reshape(-1, 2)
    fit = torch.linalg.lstsq(prev, nxt).solution.T
    assert torch.allclose(fit, A, atol=0.03)


def test_training_lowers_the_diffusion_loss():
    g = torch.Generator().manual_seed(0)
    sched = vp_schedule()
    model = ARDiffusionModel(2, sched.num_steps, width=32, generator=g)
    losses = train_ar_diffusion(model, ar1_sequences(256, 6, A, generator=g), sched, steps=300,
                                batch=256, generator=g)
    assert sum(losses[-50:]) / 50 < 0.8 * sum(losses[:50]) / 50


def test_generate_applies_the_refinement_hook_per_position():
    from trainlab.diffusion.zhou2026_ar_diffusion import generate

    sched = vp_schedule()
    m = _ExactModel(sched)
    noise = torch.randn(8, 4, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    plain = generate(m, sched, noise, num_steps=10)
    same = generate(m, sched, noise, num_steps=10, refine=lambda i, c: c)
    assert torch.equal(plain, same)
    delta = torch.tensor([0.5, 0.0], dtype=torch.float64)
    shifted = generate(m, sched, noise, num_steps=10,
                       refine=lambda i, c: c + delta if i == 0 else c)
    assert torch.allclose(shifted, generate(m, sched, noise, num_steps=10,
                                            condition_error=delta))
    seen = []
    generate(m, sched, noise, num_steps=10, refine=lambda i, c: seen.append(i) or c)
    assert seen == [0, 1, 2, 3]


def test_building_the_model_leaves_the_global_rng_alone_and_is_seeded_by_the_generator():
    from trainlab.diffusion.zhou2026_ar_diffusion import ARDiffusionModel

    state = torch.get_rng_state()
    a = ARDiffusionModel(4, 10, width=8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)
    b = ARDiffusionModel(4, 10, width=8, generator=torch.Generator().manual_seed(3))
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert p.dtype == torch.float64 and torch.equal(p, q)
