"""Virgo GNN initialization (Li et al. 2023, papers.md row 77)."""

import pytest
import torch

import trainlab.init as tinit
from trainlab.models.gcn import GCN, normalized_adjacency


def _graph(n=60, p=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(n, n, generator=g) < p).double().triu(1)
    return a + a.T


def test_variances_match_a_dense_restatement_of_the_recursion():
    a = _graph()
    x = torch.rand(60, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ah = normalized_adjacency(a)
    widths, classes = [12, 32, 32, 32, 5], 5
    var = tinit.virgo_variances(ah, x, widths, classes)
    big = len(widths) - 1
    h_f, h_b = x.mean(1), torch.ones(60, dtype=torch.float64)
    cf = [float(torch.linalg.matrix_power(ah, i + 1).matmul(h_f).pow(2).sum()) for i in range(big)]
    cb = [float(torch.linalg.matrix_power(ah, i + 1).matmul(h_b).pow(2).sum()) for i in range(big)]
    fwd = [2 / 12] + [2 / 32 * cf[i - 1] / cf[i] for i in range(1, big)]
    bwd = ([60 / (4 * cb[0])] + [2 / 32 * cb[i - 1] / cb[i] for i in range(1, big)])[::-1]
    assert var.forward == pytest.approx(fwd, rel=1e-12)
    assert var.backward == pytest.approx(bwd, rel=1e-12)
    harmonic = [2 / (1 / f + 1 / b) for f, b in zip(fwd, bwd)]
    assert var.combined == pytest.approx(harmonic, rel=1e-12)


def test_self_loops_only_reduces_forward_to_he():
    ah = normalized_adjacency(torch.zeros(30, 30))
    x = torch.rand(30, 8, dtype=torch.float64)
    var = tinit.virgo_variances(ah, x, [8, 16, 16, 3], 3)
    assert var.forward == pytest.approx([2 / 8, 2 / 16, 2 / 16], rel=1e-12)


def test_sampled_weights_have_the_virgo_variance():
    a = _graph(seed=3)
    x = torch.rand(60, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    model = GCN(a, 10, 4, hidden=200, layers=3).double()
    report = tinit.apply(model, "virgo", batch=x, generator=torch.Generator().manual_seed(0))
    for conv, rec in zip(model.convs, report.layers):
        c2 = rec.extra["variance"]
        n = conv.weight.numel()
        # uniform: Var(w^2) = 0.8 c2^2 -> 4-sigma CLT bound on the sample second moment
        assert abs(conv.weight.pow(2).mean().item() / c2 - 1) < 4 * (0.8 / n) ** 0.5
    assert model(x).shape == (60, 4)


def test_virgo_needs_features():
    from trainlab.errors import ConfigError

    model = GCN(_graph(), 10, 4)
    with pytest.raises(ConfigError, match="needs batch"):
        tinit.apply(model, "virgo")
