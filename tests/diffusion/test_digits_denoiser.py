"""The trained digits denoiser (stand-in for the pretrained models of rows 61 and 107):
seeded and global-RNG-free initialisation, training lowers the denoising loss, and guidance
interpolates the conditional and unconditional predictions exactly."""

from __future__ import annotations

import torch

from trainlab.diffusion.digits import load_digits_tensor, train_digit_classifier
from trainlab.diffusion.digits_denoiser import (
    NULL_LABEL,
    DigitsDenoiser,
    TrainedDigitsModel,
    train_digits_denoiser,
)
from trainlab.diffusion.schedules import vp_schedule


def _loss(net, sched, g):
    x0 = load_digits_tensor()[0].flatten(1)[:256]
    labels = load_digits_tensor()[1][:256]
    t = torch.randint(0, 1000, (256,), generator=g)
    eps = torch.randn(256, 64, generator=g, dtype=torch.float64)
    abar = sched.abar(t)[:, None]
    with torch.no_grad():
        return (net(abar.sqrt() * x0 + (1 - abar).sqrt() * eps, t, labels) - eps
                ).pow(2).sum(1).mean().item()


def test_init_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a = DigitsDenoiser(generator=torch.Generator().manual_seed(0))
    b = DigitsDenoiser(generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_short_training_lowers_the_denoising_loss():
    sched = vp_schedule()
    g = torch.Generator().manual_seed(1)
    before = _loss(DigitsDenoiser(generator=torch.Generator().manual_seed(2)), sched, g)
    net = train_digits_denoiser(steps=150, schedule=sched,
                                generator=torch.Generator().manual_seed(2))
    after = _loss(net, sched, torch.Generator().manual_seed(1))
    assert after < 0.5 * before
    assert not any(p.requires_grad for p in net.parameters())


def test_guidance_interpolates_conditional_and_unconditional():
    images, labels = load_digits_tensor()
    net = DigitsDenoiser(generator=torch.Generator().manual_seed(3)).eval()
    m = TrainedDigitsModel(net, vp_schedule(), train_digit_classifier(images, labels))
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    t = torch.full((5,), 300)
    with torch.no_grad():
        cond = net(x, t, torch.full((5,), 7))
        uncond = net(x, t, torch.full((5,), NULL_LABEL))
        assert torch.allclose(m.guided_denoiser(7, 1.0)(x, t), cond)
        assert torch.allclose(m.guided_denoiser(7, 0.0)(x, t), uncond)
        assert torch.allclose(m.guided_denoiser(7, 2.5)(x, t), uncond + 2.5 * (cond - uncond))
