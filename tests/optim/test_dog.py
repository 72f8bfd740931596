"""DoG and L-DoG against the paper's formula."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.optim import DoG


def _grads(seed=2, n=15):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(3, 2, generator=g, dtype=torch.float64),
             torch.randn(4, generator=g, dtype=torch.float64)] for _ in range(n)]


@pytest.mark.parametrize("layerwise", [False, True])
def test_reference_recurrence(layerwise):
    gen = torch.Generator().manual_seed(9)
    x0 = [torch.randn(3, 2, generator=gen, dtype=torch.float64),
          torch.randn(4, generator=gen, dtype=torch.float64)]
    reps, eps = 1e-4, 1e-8
    blocks = [[0], [1]] if layerwise else [[0, 1]]
    xs = [x.clone() for x in x0]
    rbar = {tuple(b): reps * (1 + math.sqrt(sum(float((x0[i] ** 2).sum()) for i in b)))
            for b in blocks}
    gsum = {tuple(b): 0.0 for b in blocks}
    for gt in _grads():
        for b in blocks:
            k = tuple(b)
            dist = math.sqrt(sum(float(((xs[i] - x0[i]) ** 2).sum()) for i in b))
            rbar[k] = max(rbar[k], dist)
            gsum[k] += sum(float((gt[i] ** 2).sum()) for i in b)
            eta = rbar[k] / math.sqrt(gsum[k] + eps)
            for i in b:
                xs[i] = xs[i] - eta * gt[i]
    ps = [x.clone().requires_grad_(True) for x in x0]
    opt = DoG(ps, reps_rel=reps, eps=eps, layerwise=layerwise)
    for gt in _grads():
        for p, g in zip(ps, gt):
            p.grad = g.clone()
        opt.step()
    for p, x in zip(ps, xs):
        torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-14)


def test_first_step_is_r_eps_over_grad_norm():
    x0 = torch.tensor([3.0, 4.0], dtype=torch.float64)
    p = x0.clone().requires_grad_(True)
    p.grad = torch.tensor([1.0, 2.0], dtype=torch.float64)
    DoG([p], reps_rel=1e-3, eps=0.0).step()
    eta0 = 1e-3 * (1 + 5.0) / math.sqrt(5.0)
    torch.testing.assert_close(p.detach(), x0 - eta0 * p.grad)
