"""Kumar (2017, papers.md row 3): variance rule for activations differentiable at 0."""

import math

import pytest
import torch
from scipy import integrate, stats

import trainlab.init as tinit


@pytest.mark.parametrize(("act", "expected"), [("sigmoid", 12.8), ("tanh", 1.0), ("relu", 2.0)])
def test_variance_values(act, expected):
    assert tinit.kumar_variance(act, 100) == pytest.approx(expected / 100, rel=1e-9)


def test_linearised_activation_keeps_activation_variance_at_one_through_20_layers():
    """The rule's own assumption: g(y) = g(0) + g'(0) y and unit-variance activations."""
    g0, d0, n = 0.5, 0.25, 1000
    g = torch.Generator().manual_seed(0)
    x = g0 + torch.randn(64, n, generator=g, dtype=torch.float64)
    ratios = []
    for _ in range(20):
        w = tinit.kumar_normal_(torch.empty(n, n, dtype=torch.float64),
                                lambda t: g0 + d0 * t, generator=g)
        new = g0 + d0 * (x @ w.T)
        ratios.append((new.var() / x.var()).item())
        x = new
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    assert 0.97 < geo < 1.03  # CLT: per-layer sd ~ sqrt(2/1000), mean of 20
    assert 0.7 < x.var().item() < 1.4


def _sigmoid_fixed_point(s2):
    def second_moment(q):
        return integrate.quad(lambda z: stats.norm.pdf(z) / (1 + math.exp(-math.sqrt(q) * z)) ** 2,
                              -12, 12)[0]

    q = 1.0
    for _ in range(40):  # the map contracts fast at this q
        q = s2 * second_moment(q)
    return q


def test_sigmoid_preactivation_variance_is_stationary_and_matches_mean_field():
    n = 1000
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, n, generator=g, dtype=torch.float64)
    variances = []
    for _ in range(20):
        w = tinit.kumar_normal_(torch.empty(n, n, dtype=torch.float64), "sigmoid", generator=g)
        y = x @ w.T
        variances.append(y.pow(2).mean().item())
        x = torch.sigmoid(y)
    late = variances[5:]
    assert max(late) / min(late) < 1.15
    ref = _sigmoid_fixed_point(12.8)
    assert sum(late) / len(late) == pytest.approx(ref, rel=0.08)


def test_rejects_activation_flat_at_zero():
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match="derivative at 0"):
        tinit.kumar_variance(lambda t: t ** 2, 10)
