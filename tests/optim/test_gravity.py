"""Gravity against a plain recurrence of the paper's algorithm (authors' t from 0).

No cross-library test: pytorch_optimizer's ``Gravity`` counts t from 1 (beta_hat starts at
(beta + 1)/3, not 1/2), so its trajectories differ by design from the authors' code."""

from __future__ import annotations

import torch

from trainlab.optim import Gravity


def test_reference_recurrence():
    g = torch.Generator().manual_seed(7)
    grads = [torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(20)]
    x0 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    lr, alpha, beta = 0.1, 0.01, 0.9
    v = torch.empty(5, 3, dtype=torch.float64).normal_(
        0, alpha / lr, generator=torch.Generator().manual_seed(11))
    x = x0.clone()
    for k, gt in enumerate(grads):  # k = 0, 1, ...
        big_m = 1 / gt.abs().max()
        zeta = gt / (1 + (gt / big_m) ** 2)
        bh = (beta * k + 1) / (k + 2)
        v = bh * v + (1 - bh) * zeta
        x = x - lr * v
    p = x0.clone().requires_grad_(True)
    opt = Gravity([p], lr=lr, alpha=alpha, beta=beta,
                  generator=torch.Generator().manual_seed(11))
    for gt in grads:
        p.grad = gt.clone()
        opt.step()
    torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-13)

