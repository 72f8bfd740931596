"""CLASSP against the paper's element-wise rule written out, AdaGrad at p=2 / threshold 0,
and sparsity of the update."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim import build_optimizer

from ._problems import assert_close_lists, grads_at, initial_params, run


@pytest.mark.parametrize("power,threshold", [(1.0, 0.3), (2.0, 0.05), (1.5, 0.0)])
def test_reference_rule(power, threshold):
    lr, eps = 0.1, 1e-5
    xs = initial_params()
    sums = [torch.zeros_like(x) for x in xs]
    for t in range(12):
        gs = grads_at(xs, t)
        new = []
        for x, g, s in zip(xs, gs, sums):
            for k in range(x.numel()):
                gk = float(g.flatten()[k])
                if gk * gk > threshold:
                    s.view(-1)[k] += abs(gk) ** power
                    x = x.clone()
                    x.view(-1)[k] -= lr * gk / (eps + float(s.view(-1)[k])) ** (1 / power)
            new.append(x)
        xs = new
    ours, _ = run(lambda p: build_optimizer("classp", p, lr=lr, threshold=threshold, eps=eps,
                                            power=power), 12)
    assert_close_lists(ours, xs, rtol=1e-12, atol=1e-14)


def test_power_two_threshold_zero_is_adagrad():
    ours, _ = run(lambda p: build_optimizer("classp", p, lr=0.1, power=2.0, eps=1e-20), 15)
    ref, _ = run(lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-10), 15)
    assert_close_lists(ours, ref, rtol=1e-7, atol=1e-9)


def test_below_threshold_weights_and_sums_do_not_move():
    p = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    opt = build_optimizer("classp", [p], lr=0.5, threshold=0.25)
    p.grad = torch.tensor([0.1, -2.0, 0.4], dtype=torch.float64)
    opt.step()
    assert p[0] == 1.0 and p[2] == 3.0 and p[1] != 2.0
    torch.testing.assert_close(opt.state[p]["grad_sum"],
                               torch.tensor([0.0, 2.0, 0.0], dtype=torch.float64))


def test_validation():
    p = [torch.zeros(2, requires_grad=True)]
    for bad in ({"threshold": -1.0}, {"power": 0.0}, {"eps": 0.0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_optimizer("classp", p, lr=0.1, **bad)
