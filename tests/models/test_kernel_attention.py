"""Kernel attention layer (row 11) against the kernels written out entry by entry."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.models import build_model
from trainlab.models.kernel_attention import attention_matrix


def _qk():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(2, 3, 4, generator=g, dtype=torch.float64) for _ in range(2))


def test_kernels_match_their_formulas():
    q, k = _qk()
    soft = attention_matrix(q, k, "softmax")
    gauss = attention_matrix(q, k, "gaussian")
    gauss_n = attention_matrix(q, k, "gaussian", normalize=True)
    for n in range(2):
        for i in range(3):
            logits = torch.stack([q[n, i] @ k[n, j] / 2.0 for j in range(3)])  # sqrt(d) = 2
            torch.testing.assert_close(soft[n, i], logits.exp() / logits.exp().sum())
            for j in range(3):
                expected = math.exp(-float((q[n, i] - k[n, j]).pow(2).sum()) / 4.0)
                assert abs(gauss[n, i, j].item() - expected) < 1e-12
            torch.testing.assert_close(gauss_n[n, i], gauss[n, i] / gauss[n, i].sum())


@pytest.mark.parametrize("kernel", ["softmax", "gaussian"])
def test_layer_output_is_attention_times_values(kernel):
    model = build_model("kernel-attention", (3, 4), 2, kernel=kernel).double()
    x = torch.randn(5, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    a = attention_matrix(x @ model.query.weight.T, x @ model.key.weight.T, kernel)
    per_token = a @ x @ model.value.weight.T
    torch.testing.assert_close(model(x), per_token.mean(1))
    model.readout = "all"
    torch.testing.assert_close(model(x), per_token)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="kernel"):
        build_model("kernel-attention", (3, 4), 1, kernel="laplace")
    with pytest.raises(ConfigError, match="input_shape"):
        build_model("kernel-attention", (12,), 1)
    with pytest.raises(ConfigError, match="readout"):
        build_model("kernel-attention", (3, 4), 1, readout="first")
    q, k = _qk()
    with pytest.raises(ConfigError, match="kernel"):
        attention_matrix(q, k, "cosine")
