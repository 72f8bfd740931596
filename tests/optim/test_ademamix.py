"""AdEMAMix against pytorch_optimizer, torch Adam (alpha=0) and the paper's schedulers."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.optim import AdEMAMix
from trainlab.optim.ademamix import ademamix_beta3

from ._problems import assert_close_lists, run

po = pytest.importorskip("pytorch_optimizer")


def test_alpha_zero_is_adam():
    ours, _ = run(lambda p: AdEMAMix(p, lr=1e-2, alpha=0.0), 200)
    ref, _ = run(lambda p: torch.optim.Adam(p, lr=1e-2), 200)
    assert_close_lists(ours, ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("warmup", [None, 50])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_matches_pytorch_optimizer(warmup, wd):
    # po uses one warmup length for alpha and beta3 and decoupled, lr-scaled weight decay
    ours, _ = run(lambda p: AdEMAMix(p, lr=1e-2, alpha=5.0, alpha_warmup=warmup,
                                     beta3_warmup=warmup, weight_decay=wd), 200)
    ref, _ = run(lambda p: po.AdEMAMix(p, lr=1e-2, alpha=5.0, t_alpha_beta3=warmup,
                                       weight_decay=wd, weight_decouple=True, foreach=False), 200)
    assert_close_lists(ours, ref, rtol=1e-10, atol=1e-12)


def test_beta3_scheduler_endpoints_and_half_life():
    b1, b3, T = 0.9, 0.9999, 100
    assert ademamix_beta3(0, b1, b3, T) == pytest.approx(b1)
    assert ademamix_beta3(T, b1, b3, T) == pytest.approx(b3)
    assert ademamix_beta3(10 * T, b1, b3, T) == b3
    # linear in half-life-ish quantity 1/ln(beta): midpoint of 1/ln is the harmonic form
    mid = ademamix_beta3(T // 2, b1, b3, T)
    assert 1 / math.log(mid) == pytest.approx(0.5 * (1 / math.log(b1) + 1 / math.log(b3)))


def test_reference_recurrence_with_warmups():
    """Plain loop of the paper's Algorithm 1 on a fixed gradient sequence."""
    g = torch.Generator().manual_seed(3)
    grads = [torch.randn(7, generator=g, dtype=torch.float64) for _ in range(30)]
    x0 = torch.randn(7, generator=g, dtype=torch.float64)
    lr, b1, b2, b3, alpha, T, eps, lam = 0.05, 0.9, 0.99, 0.999, 4.0, 10, 1e-8, 0.01
    x, m1, m2, nu = x0.clone(), torch.zeros(7, dtype=torch.float64), \
        torch.zeros(7, dtype=torch.float64), torch.zeros(7, dtype=torch.float64)
    for t, gt in enumerate(grads, start=1):
        a_t = min(t * alpha / T, alpha)
        tau = min(t, T) / T
        b3_t = min(math.exp(math.log(b1) * math.log(b3) /
                            ((1 - tau) * math.log(b3) + tau * math.log(b1))), b3)
        m1 = b1 * m1 + (1 - b1) * gt
        m2 = b3_t * m2 + (1 - b3_t) * gt
        nu = b2 * nu + (1 - b2) * gt**2
        m1h, nuh = m1 / (1 - b1**t), nu / (1 - b2**t)
        x = x - lr * ((m1h + a_t * m2) / (nuh.sqrt() + eps) + lam * x)
    p = x0.clone().requires_grad_(True)
    opt = AdEMAMix([p], lr=lr, betas=(b1, b2, b3), alpha=alpha, alpha_warmup=T,
                   beta3_warmup=T, eps=eps, weight_decay=lam)
    for gt in grads:
        p.grad = gt.clone()
        opt.step()
    torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(opt.state[p]["exp_avg_slow"], m2, rtol=1e-12, atol=1e-14)
