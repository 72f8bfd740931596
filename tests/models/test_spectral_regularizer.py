"""Spectral regularizer (row 47) against dense float64 references: sigma_1 from the SVD,
the gradient 2k(sigma^k - 1) sigma^(k-1) u v^T (plus the bias term's), and its bookkeeping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.spectral_regularizer import SpectralRegularizer


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
