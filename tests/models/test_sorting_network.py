"""Monotonic differentiable sorting networks (papers.md row 113): the vectorised network
against a scalar loop written from the swap equations, doubly stochastic P, the hard limit
torch.sort, and the sign of the Jacobian (non-negative only for the monotonic sigmoids)."""

import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.models import MODELS, build_model
from trainlab.models.sorting_network import (
    MONOTONIC,
    SIGMOIDS,
    DiffSortNet,
    bitonic_network,
    odd_even_network,
)

D = torch.float64


def _alpha(name, a, b, beta=10.0, lam=0.25):
    v = beta * (b - a)
    if name == "cauchy":
        return math.atan(v) / math.pi + 0.5
    if name == "reciprocal":
        return 0.5 * (v / (2 + abs(v)) + 1)
    if name == "optimal":
        return 1 - 1 / (16 * v) if v > 0.25 else (-1 / (16 * v) if v < -0.25 else v + 0.5)
    if name == "logistic":
        return 1 / (1 + math.exp(-v))
    if name == "logistic_phi":
        return 1 / (1 + math.exp(-v / (abs(a - b) + 1e-10) ** lam))
    return 0.5 * (1 + math.erf(v / math.sqrt(2)))


def _reference(x, name):
    # odd-even transposition on Python floats, one swap at a time
    x = list(x)
    n = len(x)
    for k in range(n):
        for i in range(k % 2, n - 1, 2):
            a, b = x[i], x[i + 1]
            al = _alpha(name, a, b)
            x[i], x[i + 1] = al * a + (1 - al) * b, (1 - al) * a + al * b
    return x


@pytest.mark.parametrize("name", SIGMOIDS)
def test_matches_scalar_reference_and_p_is_doubly_stochastic(name):
    x = 0.3 * torch.randn(3, 7, dtype=D, generator=torch.Generator().manual_seed(0))
    out, perm = DiffSortNet(7, sigmoid=name)(x)
    ref = torch.tensor([_reference(row.tolist(), name) for row in x], dtype=D)
    assert torch.allclose(out, ref, atol=1e-12)
    assert torch.allclose(x.unsqueeze(1) @ perm, out.unsqueeze(1), atol=1e-12)
    assert torch.allclose(perm.sum(1), torch.ones(3, 7, dtype=D), atol=1e-12)
    assert torch.allclose(perm.sum(2), torch.ones(3, 7, dtype=D), atol=1e-12)
    assert float(perm.min()) >= 0


@pytest.mark.parametrize("network,n", [("odd_even", 6), ("bitonic", 8)])
def test_steep_limit_is_torch_sort_with_a_hard_permutation(network, n):
    g = torch.Generator().manual_seed(1)
    x = torch.randperm(n, generator=g).to(D).unsqueeze(0) * 0.5
    out, perm = DiffSortNet(n, network=network, steepness=1e9)(x)
    assert torch.allclose(out, torch.sort(x, dim=1).values, atol=1e-7)
    assert torch.allclose(perm, perm.round(), atol=1e-7)


def _min_jacobian_entry(name):
    net = DiffSortNet(8, sigmoid=name)
    g = torch.Generator().manual_seed(2)
    worst = math.inf
    for _ in range(20):
        x = 0.3 * torch.randn(8, dtype=D, generator=g)
        jac = torch.autograd.functional.jacobian(lambda v: net(v.unsqueeze(0))[0][0], x)
        worst = min(worst, float(jac.min()))
    return worst


@pytest.mark.parametrize("name", SIGMOIDS)
def test_jacobian_is_non_negative_exactly_for_monotonic_sigmoids(name):
    worst = _min_jacobian_entry(name)
    if name in MONOTONIC:
        assert worst >= -1e-12
    else:
        assert worst < -0.05


def test_networks_and_errors():
    assert len(odd_even_network(5)) == 5
    assert len(bitonic_network(8)) == 6
    with pytest.raises(ConfigError, match="power of two"):
        bitonic_network(6)
    with pytest.raises(ConfigError, match="sigmoid"):
        DiffSortNet(4, sigmoid="softmax")
    model = build_model("diffsort", (5,), 5)
    assert model(torch.randn(2, 5)).shape == (2, 5)
    assert MODELS.entry("diffsort").papers == (113,)
