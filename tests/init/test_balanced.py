"""Balanced two-layer init: exact balance ||a_j|| = ||w_j|| (float64), first-layer variance
within a CLT bound of scale^2/d, fair signs / uniform directions, determinism, the conserved
quantity ||w_j||^2 - ||a_j||^2 staying ~0 under small-step GD on a ReLU net, and errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.init import INITS, apply, balanced_
from trainlab.models import build_model


def _two_layer(d=10, h=4000, k=1, bias=False):
    return build_model("mlp", (d,), k, depth=1, width=h, bias=bias).double()


def test_balance_and_variance_one_output():
    model = _two_layer()
    apply(model, "balanced", generator=torch.Generator().manual_seed(0), scale=1e-3)
    w, a = model[1].weight.detach(), model[3].weight.detach()[0]
    torch.testing.assert_close(a.abs(), w.norm(dim=1), rtol=1e-15, atol=0)
    n = w.numel()
    var = (w / 1e-3).pow(2).mean().item()  # expected 1/d = 0.1
    assert abs(var - 0.1) < 5 * 0.1 * math.sqrt(2 / n)
    frac = (a > 0).double().mean().item()  # fair signs
    assert abs(frac - 0.5) < 5 * 0.5 / math.sqrt(a.numel())


def test_balance_and_uniform_directions_many_outputs():
    model = _two_layer(d=6, h=3000, k=3, bias=True)
    with torch.no_grad():
        model[1].bias.fill_(1.0)
    report = apply(model, "balanced", generator=torch.Generator().manual_seed(1))
    w, a = model[1].weight.detach(), model[3].weight.detach()
    torch.testing.assert_close(a.norm(dim=0), w.norm(dim=1), rtol=1e-14, atol=0)
    u = a / a.norm(dim=0)  # unit directions: mean ~0, second moment I/3
    assert u.mean(1).abs().max() < 5 / math.sqrt(3 * 3000)
    torch.testing.assert_close(u @ u.T / 3000, torch.eye(3, dtype=torch.float64) / 3,
                               atol=0.03, rtol=0)
    assert torch.count_nonzero(model[1].bias) == 0 and torch.count_nonzero(model[3].bias) == 0
    assert [layer.name for layer in report.layers] == ["1", "3"]


def test_same_generator_same_weights():
    a, b = _two_layer(h=20), _two_layer(h=20)
    apply(a, "balanced", generator=torch.Generator().manual_seed(5), scale=0.1)
    apply(b, "balanced", generator=torch.Generator().manual_seed(5), scale=0.1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def _balance_drift(lr: float, steps: int) -> float:
    g = torch.Generator().manual_seed(2)
    model = _two_layer(d=5, h=50)
    apply(model, "balanced", generator=g, scale=1.0)
    x = torch.randn(64, 5, generator=g, dtype=torch.float64)
    y = torch.randn(64, 1, generator=g, dtype=torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    w0 = model[1].weight.detach().norm(dim=1).pow(2).clone()
    for _ in range(steps):
        opt.zero_grad()
        (model(x) - y).pow(2).mean().backward()
        opt.step()
    w, a = model[1].weight.detach(), model[3].weight.detach()[0]
    drift = (w.norm(dim=1).pow(2) - a.pow(2)).abs().max().item()
    moved = (w.norm(dim=1).pow(2) - w0).abs().max().item()
    assert moved > 1e-2
    return drift / moved


def test_gradient_flow_keeps_the_balance():
    # ReLU is 1-homogeneous: d/dt (||w_j||^2 - a_j^2) = 0 under gradient flow; GD's drift
    # per unit of movement is O(lr), so a 10x smaller step over the same time gives ~10x less.
    coarse, fine = _balance_drift(1e-3, 200), _balance_drift(1e-4, 2000)
    assert coarse < 1e-2 and fine < 0.2 * coarse


def test_errors():
    assert INITS.entry("balanced").papers == (27,)
    deep = build_model("mlp", (4,), 1, depth=2, width=3)
    with pytest.raises(ConfigError, match="two-layer"):
        apply(deep, "balanced", generator=torch.Generator())
    with pytest.raises(ConfigError, match="scale"):
        apply(_two_layer(h=3), "balanced", scale=0.0)
    with pytest.raises(ConfigError, match="shapes"):
        balanced_(torch.empty(3, 4), torch.empty(1, 5))
    assert isinstance(_two_layer(h=3)[1], nn.Linear)
