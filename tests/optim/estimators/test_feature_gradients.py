"""Feature Gradients (row 78): the linear-time chain sums equal a brute-force sum over all
increasing index chains, and the search recovers the k informative features of a synthetic
problem (regression and binary classification) among d."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim.estimators import ESTIMATORS
from trainlab.optim.estimators.feature_gradients import (
    SLE_COEFFICIENTS,
    chain_sums,
    feature_gradients,
    learnability_loss,
)


def _brute_chain_sums(s, x, y, order):
    n = x.shape[0]
    kern = lambda a, b: float((x[a] * s * x[b]).sum())  # noqa: E731
    out = []
    for k in range(order):
        total = 0.0
        for chain in itertools.combinations(range(n), k + 2):
            term = float(y[chain[0]] * y[chain[-1]])
            for a, b in zip(chain[:-1], chain[1:]):
                term *= kern(a, b)
            total += term
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)


def test_chain_sums_equal_brute_force():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    y = torch.randn(7, generator=g, dtype=torch.float64)
    s = torch.rand(3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(chain_sums(s, x, y, 4), _brute_chain_sums(s, x, y, 4),
                               rtol=1e-12, atol=1e-12)
    loss = learnability_loss(s, x, y, order=4)
    z = sum(c / math.comb(7, k + 2) * t for k, (c, t) in
            enumerate(zip(SLE_COEFFICIENTS[4], _brute_chain_sums(s, x, y, 4).tolist())))
    assert float(loss) == pytest.approx(1.0 - z, rel=1e-12)


def _synthetic(seed, n=1500, d=20, informative=(3, 7, 12)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = x[:, list(informative)] @ torch.tensor([1.0, -0.8, 0.6], dtype=torch.float64)
    return x, y + 0.3 * torch.randn(n, generator=g, dtype=torch.float64), set(informative)


def test_recovers_informative_features_regression():
    x, y, informative = _synthetic(1)
    x0, y0 = x.clone(), y.clone()
    res = feature_gradients(x, y, n_features=3, epochs=20, batch_size=300,
                            generator=torch.Generator().manual_seed(2))
    assert set(res.selected.tolist()) == informative
    others = [j for j in range(x.shape[1]) if j not in informative]
    assert float(res.scores[list(informative)].min()) > float(res.scores[others].max()) + 0.2
    assert torch.equal(x, x0) and torch.equal(y, y0)


def test_recovers_informative_features_classification():
    x, y, informative = _synthetic(3)
    res = feature_gradients(x, (y > 0).long(), n_features=3, epochs=20, batch_size=300,
                            classification=True, generator=torch.Generator().manual_seed(4))
    assert set(res.selected.tolist()) == informative


def test_registered_and_validation():
    assert ESTIMATORS.entry("feature-gradients").papers == (78,)
    x, y, _ = _synthetic(0, n=50)
    with pytest.raises(ConfigError, match="order"):
        learnability_loss(torch.ones(20, dtype=torch.float64), x, y, order=9)
    with pytest.raises(ConfigError, match="n_features"):
        feature_gradients(x, y, n_features=0)
    with pytest.raises(ConfigError, match="two classes"):
        feature_gradients(x, torch.arange(50) % 3, classification=True)
