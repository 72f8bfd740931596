"""The MLP's NTK parametrization: the forward pass is the written-out formula, gradients are
those of an equivalent standard layer scaled by 1/sqrt(fan_in) (chain rule), the init is
standard normal, and the default parametrization builds exactly the model it built before."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models import build_model
from trainlab.models.mlp import NTKLinear


def test_forward_is_the_ntk_formula():
    g = torch.Generator().manual_seed(0)
    model = build_model("mlp", (6,), 2, depth=2, width=5, activation="tanh",
                        parametrization="ntk").double()
    lin = [m for m in model if isinstance(m, nn.Linear)]
    assert all(isinstance(m, NTKLinear) for m in lin) and len(lin) == 3
    with torch.no_grad():
        for m in lin:
            m.bias.normal_(generator=g)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    h = x
    for i, m in enumerate(lin):  # h <- W h / sqrt(n_in) + b, tanh between layers
        h = h @ m.weight.T / math.sqrt(m.in_features) + m.bias
        h = torch.tanh(h) if i < 2 else h
    torch.testing.assert_close(model(x), h, rtol=1e-13, atol=1e-13)


def test_gradients_are_scaled_by_the_chain_rule():
    g = torch.Generator().manual_seed(1)
    ntk = NTKLinear(9, 3).double()
    std = nn.Linear(9, 3).double()
    with torch.no_grad():
        ntk.weight.normal_(generator=g)
        std.weight.copy_(ntk.weight / 3.0)  # effective weight W / sqrt(9)
        std.bias.copy_(ntk.bias)
    x = torch.randn(5, 9, generator=g, dtype=torch.float64)
    torch.testing.assert_close(ntk(x), std(x))
    ntk(x).pow(2).sum().backward()
    std(x).pow(2).sum().backward()
    torch.testing.assert_close(ntk.weight.grad, std.weight.grad / 3.0)
    torch.testing.assert_close(ntk.bias.grad, std.bias.grad)


def test_default_init_is_standard_normal():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        layer = NTKLinear(400, 300)
    w = layer.weight.detach().double()
    n = w.numel()
    assert abs(w.mean().item()) < 5 / math.sqrt(n)
    assert abs(w.var().item() - 1.0) < 5 * math.sqrt(2 / n)
    assert torch.count_nonzero(layer.bias) == 0


def test_standard_parametrization_is_unchanged():
    with torch.random.fork_rng():
        torch.manual_seed(3)
        new = build_model("mlp", (5,), 2, depth=2, width=4)
        torch.manual_seed(3)
        old = nn.Sequential(nn.Flatten(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(),
                            nn.Linear(4, 2))
    assert [type(m) for m in new] == [type(m) for m in old]
    for (na, a), (nb, b) in zip(new.state_dict().items(), old.state_dict().items(), strict=True):
        assert na == nb and torch.equal(a, b)
    with pytest.raises(ConfigError, match="parametrization"):
        build_model("mlp", (5,), 2, parametrization="mup")
