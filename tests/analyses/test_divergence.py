"""Paired-run divergence: CKA against its HSIC definition, weight matching recovers a
hidden permutation, barriers and distances against direct computation."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import batch, mlp, snapshot

from trainlab.analyses.cka import layer_cka, linear_cka
from trainlab.analyses.divergence import paired_divergence, parameter_distance
from trainlab.analyses.weight_matching import weight_matching


def hsic(k, l):
    n = k.shape[0]
    h = torch.eye(n, dtype=k.dtype) - 1.0 / n
    return torch.trace(k @ h @ l @ h) / (n - 1) ** 2


def test_linear_cka_matches_hsic_definition_and_invariances():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 6, generator=g, dtype=torch.float64)
    y = x @ torch.randn(6, 4, generator=g, dtype=torch.float64) + 0.5 * torch.randn(
        20, 4, generator=g, dtype=torch.float64)
    k, l = x @ x.T, y @ y.T
    ref = hsic(k, l) / torch.sqrt(hsic(k, k) * hsic(l, l))
    torch.testing.assert_close(linear_cka(x, y), ref)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    torch.testing.assert_close(linear_cka(3.0 * x @ q + 1.0, y), ref)
    torch.testing.assert_close(linear_cka(x, x), torch.tensor(1.0, dtype=torch.float64))


def permuted(model, generator):
    """The same function with every hidden layer's units shuffled."""
    out = copy.deepcopy(model)
    lin = [m for m in out if isinstance(m, torch.nn.Linear)]
    prev = None
    with torch.no_grad():
        for i, m in enumerate(lin):
            rows = (torch.randperm(m.out_features, generator=generator) if i < len(lin) - 1
                    else torch.arange(m.out_features))
            w = m.weight[rows]
            if prev is not None:
                w = w[:, prev]
            m.weight.copy_(w)
            m.bias.copy_(m.bias[rows])
            prev = rows
    return out


def test_weight_matching_recovers_permutation():
    a = mlp(sizes=(5, 8, 7, 3))
    x, _ = batch(d=5)
    b = permuted(a, torch.Generator().manual_seed(1))
    torch.testing.assert_close(b(x), a(x))  # the fixture is a true symmetry
    assert parameter_distance(a, b) > 0.5
    snap = snapshot(b)
    aligned = weight_matching(a, b, generator=torch.Generator().manual_seed(0))
    assert torch.equal(snap["params"]["0.weight"], b[0].weight)  # b untouched
    for (n, p), q in zip(a.named_parameters(), aligned.parameters()):
        torch.testing.assert_close(q, p, msg=n)


def test_weight_matching_keeps_function_and_reduces_distance():
    a, b = mlp(seed=0, sizes=(5, 16, 16, 3)), mlp(seed=1, sizes=(5, 16, 16, 3))
    x, _ = batch(d=5)
    aligned = weight_matching(a, b, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(aligned(x), b(x))
    assert parameter_distance(a, aligned) < parameter_distance(a, b)


def test_paired_divergence():
    a = mlp(sizes=(5, 8, 7, 3))
    x, y = batch(d=5)
    b = permuted(a, torch.Generator().manual_seed(2))
    res = paired_divergence(a, b, F.cross_entropy, x, y,
                            generator=torch.Generator().manual_seed(0))
    ref = torch.cat([(p - q).detach().reshape(-1) for p, q in zip(a.parameters(), b.parameters())])
    assert res.distance == pytest.approx(float(ref.norm()), rel=1e-12)
    assert res.aligned_distance == pytest.approx(0.0, abs=1e-12)
    assert res.aligned_barrier == pytest.approx(0.0, abs=1e-12)
    assert res.barrier >= 0
    assert set(res.cka) == {"0", "2", "4"}
    # a permutation of units is an orthogonal map of each representation: CKA is 1
    assert all(v == pytest.approx(1.0) for v in res.cka.values())
    same = layer_cka(a, a, x)
    assert all(float(v) == pytest.approx(1.0) for v in same.values())
