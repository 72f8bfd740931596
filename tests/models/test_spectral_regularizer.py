"""Spectral regularizer (row 47) against dense float64 references: sigma_1 from the SVD,
the gradient 2k(sigma^k - 1) sigma^(k-1) u v^T (plus the bias term's), and its bookkeeping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.spectral_regularizer import (
    SpectralRegularizer,
    StackedSpectralRegularizer,
    stacked_top_singular_values,
)


def _model() -> nn.Sequential:
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


def test_value_and_gradient_match_the_svd():
    model, k = _model(), 3.0
    reg = SpectralRegularizer(k=k, iterations=200, generator=torch.Generator().manual_seed(1))
    value = reg(model)
    value.backward()
    expected = 0.0
    for layer in (model[0], model[2]):
        u, s, vh = torch.linalg.svd(layer.weight.detach())
        sigma = s[0]
        expected += (sigma ** k - 1) ** 2 + layer.bias.detach().pow(2).sum() ** k
        grad_w = 2 * k * (sigma ** k - 1) * sigma ** (k - 1) * torch.outer(u[:, 0], vh[0])
        torch.testing.assert_close(layer.weight.grad, grad_w, rtol=1e-8, atol=1e-8)
        b = layer.bias.detach()
        torch.testing.assert_close(layer.bias.grad, 2 * k * b.pow(2).sum() ** (k - 1) * b)
    torch.testing.assert_close(value.detach(), torch.as_tensor(expected, dtype=torch.float64))


def test_warm_started_single_iterations_converge_and_select_filters():
    model = _model()
    reg = SpectralRegularizer(k=1.0, include_bias=False,
                              select=lambda name, _m: name == "0",
                              generator=torch.Generator().manual_seed(2))
    for _ in range(300):  # one iteration per call; the vector persists between calls
        value = reg(model)
    sigma = torch.linalg.matrix_norm(model[0].weight.detach(), ord=2)
    torch.testing.assert_close(value.detach(), (sigma - 1) ** 2, rtol=1e-6, atol=1e-9)
    assert model[0].weight.grad is None  # the regularizer never touches .grad itself


def test_bad_arguments():
    with pytest.raises(ConfigError, match="k"):
        SpectralRegularizer(k=0.5)
    with pytest.raises(ConfigError, match="iterations"):
        SpectralRegularizer(iterations=0)


def test_stacked_regularizer_equals_one_regularizer_per_run():
    # three runs, each its own model and generator: the stacked values and gradients equal
    # the per-run regularizer's over several warm-started calls (float64)
    models = [_model() for _ in range(3)]
    with torch.no_grad():
        for r, m in enumerate(models):
            for p in m.parameters():
                p.mul_(1 + 0.3 * r)
    single = [SpectralRegularizer(k=2.0, generator=torch.Generator().manual_seed(10 + r))
              for r in range(3)]
    stacked = StackedSpectralRegularizer([torch.Generator().manual_seed(10 + r)
                                          for r in range(3)], k=2.0)
    weights = [torch.stack([m[i].weight.detach() for m in models]).requires_grad_(True)
               for i in (0, 2)]
    biases = [torch.stack([m[i].bias.detach() for m in models]).requires_grad_(True)
              for i in (0, 2)]
    for _ in range(4):
        values = stacked([(str(i), w, b) for i, w, b in zip((0, 2), weights, biases,
                                                             strict=True)])
        values.sum().backward()
        for r, m in enumerate(models):
            m.zero_grad()
            value = single[r](m)
            value.backward()
            torch.testing.assert_close(values[r], value, rtol=1e-12, atol=1e-12)
            for j, i in enumerate((0, 2)):
                torch.testing.assert_close(weights[j].grad[r], m[i].weight.grad,
                                           rtol=1e-12, atol=1e-12)
                torch.testing.assert_close(biases[j].grad[r], m[i].bias.grad,
                                           rtol=1e-12, atol=1e-12)
        for t in weights + biases:
            t.grad = None
    start = torch.ones(3, 5, dtype=torch.float64) / 5 ** 0.5
    sigma, _ = stacked_top_singular_values(weights[0].detach(), start,
                                           iterations=300)
    torch.testing.assert_close(sigma, torch.linalg.matrix_norm(weights[0].detach(), ord=2))
    with pytest.raises(ConfigError, match="stacks 3 runs, the regularizer has 2 generators"):
        StackedSpectralRegularizer([None, None])([("0", weights[0], None)])
    with pytest.raises(ConfigError, match="iterations"):
        stacked_top_singular_values(weights[0], torch.ones(3, 5), iterations=0)
