"""Optimistic-AMSGrad against a plain recurrence of the paper's Algorithm 2."""

from __future__ import annotations

import pytest
import torch

from trainlab.optim import OptimisticAMSGrad


@pytest.mark.parametrize("predictor", ["last", "zero"])
def test_reference_recurrence(predictor):
    g = torch.Generator().manual_seed(4)
    grads = [torch.randn(6, generator=g, dtype=torch.float64) for _ in range(25)]
    x0 = torch.randn(6, generator=g, dtype=torch.float64)
    lr, b1, b2, eps = 0.05, 0.9, 0.99, 1e-8
    z = torch.zeros(6, dtype=torch.float64)
    theta, v, vhat, w_half, w = z.clone(), z.clone(), z.clone(), x0.clone(), x0.clone()
    for gt in grads:
        theta_prev = theta
        theta = b1 * theta + (1 - b1) * gt
        v = b2 * v + (1 - b2) * gt**2
        vhat = torch.maximum(vhat, v)
        w_half = w_half - lr * theta / (vhat.sqrt() + eps)
        m_next = gt if predictor == "last" else z
        h = b1 * theta_prev + (1 - b1) * m_next
        w = w_half - lr * h / (vhat.sqrt() + eps)
    p = x0.clone().requires_grad_(True)
    opt = OptimisticAMSGrad([p], lr=lr, betas=(b1, b2), eps=eps, predictor=predictor)
    for gt in grads:
        p.grad = gt.clone()
        opt.step()
    torch.testing.assert_close(p.detach(), w, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(opt.state[p]["half"], w_half, rtol=1e-12, atol=1e-13)


def test_converges_on_quadratic():
    x = torch.full((4,), 3.0, dtype=torch.float64, requires_grad=True)
    opt = OptimisticAMSGrad([x], lr=0.05)
    for _ in range(2000):
        opt.zero_grad()
        ((x - 1.0) ** 2).sum().backward()
        opt.step()
    torch.testing.assert_close(x.detach(), torch.ones(4, dtype=torch.float64), atol=1e-3,
                               rtol=0)
