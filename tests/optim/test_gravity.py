"""Gravity against a plain recurrence of the paper's algorithm (authors' t from 0) and against
pytorch_optimizer's ``Gravity``, which counts t from 1 (beta_hat starts at (beta + 1)/3, not
1/2): the comparison starts its step counter one lower, so both count as the authors do."""

from __future__ import annotations

import pytest
import torch

from trainlab.optim import Gravity

from ._problems import assert_close_lists, initial_params, run


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



def test_matches_pytorch_optimizer_with_its_step_count_shifted_to_zero():
    """pytorch_optimizer's ``Gravity`` (an independent implementation) counts t from 1; with
    its group step counter started at -1 its first t is 0, the authors' count, and with its
    initial velocity set to ours the two must agree over 100 steps of the shared loss."""
    po = pytest.importorskip("pytorch_optimizer")
    lr, alpha, beta = 0.05, 0.01, 0.9
    draw = torch.Generator().manual_seed(11)
    v0 = [torch.empty(p.shape, dtype=torch.float64).normal_(0, alpha / lr, generator=draw)
          for p in initial_params()]

    def theirs(params):
        opt = po.Gravity(params, lr=lr, alpha=alpha, beta=beta, foreach=False)
        opt.param_groups[0]["step"] = -1
        for p, v in zip(params, v0):
            opt.state[p]["v"] = v.clone()
        return opt

    ours, _ = run(lambda ps: Gravity(ps, lr=lr, alpha=alpha, beta=beta,
                                     generator=torch.Generator().manual_seed(11)), 100)
    ref, _ = run(theirs, 100)
    assert_close_lists(ours, ref, rtol=1e-12, atol=1e-13)
