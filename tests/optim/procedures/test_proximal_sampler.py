"""Proximal sampler (papers.md row 109) from a cold start (a point mass): the exact Gaussian
AR(1) law after k steps, W2 mixing against exact samples (POT), the oracle's one-step law,
and a 2-D logistic-regression posterior against grid quadrature."""

import math

import ot
import pytest
import torch
from scipy import stats

from trainlab.errors import TrainlabError
from trainlab.optim.procedures import PROCEDURES
from trainlab.optim.procedures.proximal_sampler import (
    gaussian_law_after,
    proximal_sampler,
    restricted_gaussian_oracle,
)

D = torch.float64


def _gauss(x):
    return 0.5 * (x * x).sum(1)


def _w2(a, b):
    n = a.shape[0]
    w = torch.full((n,), 1.0 / n, dtype=D)
    return float(ot.emd2(w, w, ot.dist(a, b))) ** 0.5


@pytest.mark.parametrize("oracle", ["first", "zeroth"])
def test_oracle_draws_the_gaussian_conditional(oracle):
    # pi = N(0, 1): x | y ~ N(a y, a h), a = 1 / (1 + h)
    h, y0 = 0.5, 0.8
    g = torch.Generator().manual_seed(0)
    x, _ = restricted_gaussian_oracle(_gauss, torch.full((3000, 1), y0, dtype=D), h,
                                      oracle=oracle, generator=g)
    a = 1 / (1 + h)
    assert stats.kstest(x[:, 0].numpy(), "norm", args=(a * y0, math.sqrt(a * h))).pvalue > 1e-3


def test_cold_start_variance_follows_the_ar1_law_and_w2_mixes():
    g = torch.Generator().manual_seed(1)
    n, d, h = 1500, 2, 0.5
    ref = torch.randn(n, d, generator=g, dtype=D)
    floor = _w2(torch.randn(n, d, generator=g, dtype=D), ref)  # two exact samples
    w2 = []
    for k in (1, 8):
        x, _ = proximal_sampler(_gauss, torch.zeros(n, d, dtype=D), h=h, steps=k, generator=g)
        _, var = gaussian_law_after(k, h=h)
        se = var * math.sqrt(2 / (n * d))
        assert abs(float(x.var(0, correction=0).mean()) - var) < 4 * se
        w2.append(_w2(x, ref))
    assert w2[0] > 2 * floor  # one step from the point mass is far from pi
    assert w2[1] < 1.5 * floor  # eight steps: at the sampling noise floor


def test_logistic_posterior_mean_matches_grid_quadrature():
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(20, 2, generator=g, dtype=D)
    labels = torch.where(feats @ torch.tensor([1.5, -1.0], dtype=D) + 0.3 * torch.randn(
        20, generator=g, dtype=D) > 0, 1.0, -1.0)

    def potential(w):  # logistic likelihood + N(0, I) prior: convex
        return torch.nn.functional.softplus(-(w @ feats.T) * labels).sum(1) + 0.5 * (w * w).sum(1)

    grid = torch.linspace(-6, 6, 601, dtype=D)
    ww = torch.cartesian_prod(grid, grid)
    dens = torch.exp(-(potential(ww) - potential(ww).min()))
    mean = (ww * dens.unsqueeze(1)).sum(0) / dens.sum()
    x, _ = proximal_sampler(potential, torch.zeros(1000, 2, dtype=D), h=0.05, steps=40,
                            generator=g)
    se = x.std(0) / math.sqrt(1000)
    assert torch.all((x.mean(0) - mean).abs() < 4 * se)


def test_failures_are_reported():
    y = torch.full((2, 1), 50.0, dtype=D)
    with pytest.raises(TrainlabError, match="no accepted proposal"):
        restricted_gaussian_oracle(_gauss, y, 0.5, oracle="zeroth", max_tries=20,
                                   generator=torch.Generator().manual_seed(0))
    with pytest.raises(TrainlabError, match="lower bound"):
        restricted_gaussian_oracle(_gauss, y, 0.5, oracle="zeroth", v_min=1e6)
    assert PROCEDURES.entry("proximal-sampler").papers == (109,)
