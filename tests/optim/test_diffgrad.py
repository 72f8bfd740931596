"""diffGrad against pytorch_optimizer and a plain recurrence of the paper's equations."""

from __future__ import annotations

import pytest
import torch

from trainlab.optim import DiffGrad

from ._problems import assert_close_lists, run

po = pytest.importorskip("pytorch_optimizer")


def test_matches_pytorch_optimizer_eps0():
    # po adds eps to sqrt(v) before the sqrt(1-b2^t) correction, we add it after (as the paper
    # and torch Adam); with eps=0 both are the same formula.
    ours, _ = run(lambda p: DiffGrad(p, lr=1e-2, eps=0.0), 200)
    ref, _ = run(lambda p: po.DiffGrad(p, lr=1e-2, eps=0.0, foreach=False), 200)
    assert_close_lists(ours, ref, rtol=1e-10, atol=1e-12)


def test_matches_pytorch_optimizer_default_eps_to_1e6():
    ours, _ = run(lambda p: DiffGrad(p, lr=1e-2), 200)
    ref, _ = run(lambda p: po.DiffGrad(p, lr=1e-2, foreach=False), 200)
    assert_close_lists(ours, ref, rtol=1e-6, atol=1e-8)


def test_reference_recurrence():
    g = torch.Generator().manual_seed(5)
    grads = [torch.randn(6, generator=g, dtype=torch.float64) for _ in range(25)]
    x0 = torch.randn(6, generator=g, dtype=torch.float64)
    lr, b1, b2, eps = 0.03, 0.9, 0.999, 1e-8
    x, m, v, gp = x0.clone(), torch.zeros(6, dtype=torch.float64), \
        torch.zeros(6, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    for t, gt in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * gt
        v = b2 * v + (1 - b2) * gt**2
        xi = 1 / (1 + torch.exp(-(gp - gt).abs()))
        x = x - lr * xi * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        gp = gt
    p = x0.clone().requires_grad_(True)
    opt = DiffGrad([p], lr=lr, betas=(b1, b2), eps=eps)
    for gt in grads:
        p.grad = gt.clone()
        opt.step()
    torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-13)
