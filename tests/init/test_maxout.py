"""Maxout constants and depth-stable moments (Tseran & Montufar 2023, papers.md row 17)."""

import math

import pytest
import torch
from scipy import integrate, stats

import trainlab.init as tinit
from trainlab.models import build_model


@pytest.mark.parametrize(("k", "paper"), [(2, 1.0), (3, 1.27566), (4, 1.55133), (5, 1.80002)])
def test_second_moment_of_max_matches_quadrature_and_paper(k, paper):
    ref = integrate.quad(lambda t: t * t * k * stats.norm.pdf(t) * stats.norm.cdf(t) ** (k - 1),
                         -math.inf, math.inf)[0]
    assert tinit.maxout_second_moment(k) == pytest.approx(ref, rel=1e-8)
    assert tinit.maxout_second_moment(k) == pytest.approx(paper, abs=1e-5)
    assert tinit.maxout_constant(3) == pytest.approx(0.78391, abs=1e-5)


def _moments(c_scale, depth=20, width=200, rank=5):
    model = build_model("maxout-mlp", (width,), 1, depth=depth, width=width, rank=rank).double()
    g = torch.Generator().manual_seed(0)
    tinit.apply(model, "maxout", generator=g)
    with torch.no_grad():
        for block in list(model)[1:-1]:
            block.linear.weight.mul_(math.sqrt(c_scale))
    x = torch.randn(32, width, generator=g, dtype=torch.float64)
    norms, h = [], x
    for block in list(model)[1:-1]:
        h = block(h)
        norms.append((h.pow(2).sum(1) / x.pow(2).sum(1)).mean().item())
    return norms


def test_forward_moment_is_stable_at_paper_constant_and_drifts_otherwise():
    good = _moments(1.0)
    assert all(0.6 < v < 1.6 for v in good)
    big = _moments(tinit.maxout_second_moment(5))  # c = 1: ratio M_K per layer
    assert big[-1] > 100
    tiny = _moments(0.1 * tinit.maxout_second_moment(5))  # c = 0.1
    assert tiny[-1] < 1e-10
