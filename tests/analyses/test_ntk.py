"""Empirical NTK and the two-layer linear closed form, both against the dense parameter
Jacobian J J^T computed here with torch.autograd.functional.jacobian (float64)."""

from __future__ import annotations

import pytest
import torch

from trainlab.analyses import ANALYSES
from trainlab.analyses.ntk import empirical_ntk, linear_ntk
from trainlab.errors import ConfigError
from trainlab.models import build_model


def _dense_jjt(model, x):
    params = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]

    def f(*theta):
        out = torch.func.functional_call(model, dict(zip(names, theta, strict=True)), (x,))
        return out.reshape(-1)

    jac = torch.autograd.functional.jacobian(f, tuple(p.detach() for p in params))
    j = torch.cat([t.reshape(t.shape[0], -1) for t in jac], dim=1)  # (n k, P)
    return j @ j.T


def test_linear_ntk_matches_the_jacobian():
    g = torch.Generator().manual_seed(0)
    model = build_model("deep-linear", (6,), 3, depth=1, width=5).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(generator=g)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    w1, w2 = model[1].weight.detach(), model[3].weight.detach()
    torch.testing.assert_close(linear_ntk(w1, w2, x), _dense_jjt(model, x), rtol=1e-12,
                               atol=1e-12)


def test_empirical_ntk_matches_the_jacobian_and_leaves_the_model():
    g = torch.Generator().manual_seed(1)
    model = build_model("mlp", (5,), 2, depth=2, width=4, activation="tanh").double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(generator=g)
    model.eval()
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    k = empirical_ntk(model, x)
    assert k.shape == (6, 6)
    torch.testing.assert_close(k, _dense_jjt(model, x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(k, k.T)
    assert torch.linalg.eigvalsh(k).min() > -1e-10  # a Gram matrix
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_registered_and_errors():
    assert ANALYSES.get("linear-ntk") is linear_ntk
    assert ANALYSES.entry("empirical-ntk").papers == (68,)
    with pytest.raises(ConfigError, match="linear_ntk"):
        linear_ntk(torch.ones(3, 4), torch.ones(2, 4), torch.ones(5, 4))
