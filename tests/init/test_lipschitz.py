"""AOL / SLL layers and the AOL init analysis (papers.md row 64)."""

import math

import pytest
import torch

from trainlab.init.lipschitz import aol_relu_decay, aol_weight_variance, mean_abs_dot
from trainlab.models import build_model
from trainlab.models.lipschitz import AOLLinear, SLLBlock, aol_rescale


def test_mean_abs_dot_matches_sampling():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, 6, generator=g, dtype=torch.float64)
    y = torch.randn(200_000, 6, generator=g, dtype=torch.float64)
    assert (x * y).sum(1).abs().mean().item() == pytest.approx(mean_abs_dot(6), rel=0.01)


def test_aol_is_scale_invariant_and_contractive():
    w = torch.randn(20, 30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(aol_rescale(7.5 * w), aol_rescale(w), rtol=1e-12, atol=0)
    assert torch.linalg.matrix_norm(aol_rescale(w), ord=2) <= 1 + 1e-12


def test_sll_block_is_one_lipschitz():
    block = SLLBlock(16).double()
    x = torch.randn(16, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(block, x)
    assert torch.linalg.matrix_norm(jac, ord=2) <= 1 + 1e-9


@pytest.mark.parametrize("sigma", [0.01, 1.0, 100.0])
def test_effective_variance_and_decay_through_depth(sigma):
    n, depth = 64, 5
    g = torch.Generator().manual_seed(2)
    layers = [AOLLinear(n, n, bias=False).double() for _ in range(depth)]
    for layer in layers:
        with torch.no_grad():
            layer.weight.normal_(0, sigma, generator=g)
    eff = torch.stack([aol_rescale(layer.weight) for layer in layers])
    assert eff.var().item() == pytest.approx(aol_weight_variance(n, n), rel=0.1)
    x = torch.randn(2000, n, generator=g, dtype=torch.float64)
    m0, h = x.pow(2).mean().item(), x
    for i, layer in enumerate(layers):
        h = torch.relu(layer(h))
        expected = m0 * aol_relu_decay(n, n) ** (i + 1)
        assert h.pow(2).mean().item() == pytest.approx(expected, rel=0.2)
    assert aol_relu_decay(n, n) < 0.5


@pytest.mark.parametrize("name", ["aol-mlp", "sll-net"])
def test_whole_networks_are_one_lipschitz(name):
    """The claim of both constructions: the network is 1-Lipschitz for any weights, here
    random weights far from init (scaled by 10): the input Jacobian's spectral norm is at
    most 1 everywhere sampled, and so is every difference quotient."""
    torch.manual_seed(0)
    model = build_model(name, (10,), 3, depth=3, width=8).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(10.0).add_(torch.randn_like(p))
    xs = torch.randn(20, 10, dtype=torch.float64)
    for x in xs:
        jac = torch.autograd.functional.jacobian(lambda v: model(v[None])[0], x)
        assert torch.linalg.matrix_norm(jac, ord=2) <= 1 + 1e-9
    a, b = xs[:10], xs[10:]
    with torch.no_grad():
        ratio = (model(a) - model(b)).norm(dim=1) / (a - b).norm(dim=1)
    assert float(ratio.max()) <= 1 + 1e-12
    assert model(xs).shape == (20, 3)
    assert math.isfinite(aol_weight_variance(3, 1))
