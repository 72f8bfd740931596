"""SIREN and VI3NR (papers.md row 58)."""

import math

import numpy as np
import pytest
import torch

import trainlab.init as tinit
from trainlab.models import build_model


def _mc_gain2(f, sigma_p, n=1_000_000):
    z = np.random.default_rng(0).normal(0.0, sigma_p, n)
    y = f(z)
    return sigma_p ** 2 / (y.mean() ** 2 + y.var())


@pytest.mark.parametrize(("act", "sigma_p", "fn", "table"), [
    ("relu", 1.0, lambda z: np.maximum(z, 0), 2.0),
    ("tanh", 1.0, np.tanh, 2.54),
    ("tanh", 0.1, np.tanh, 1.02),
    ("sigmoid", 1.0, lambda z: 1 / (1 + np.exp(-z)), 3.41),
])
def test_gain_matches_monte_carlo_and_paper_table(act, sigma_p, fn, table):
    g2 = tinit.vi3nr_gain(act, sigma_p) ** 2
    assert g2 == pytest.approx(_mc_gain2(fn, sigma_p), rel=0.01)
    assert g2 == pytest.approx(table, abs=0.01)


def test_deep_tanh_net_keeps_preactivation_variance_at_target():
    sigma_p, width = 1.0, 800
    model = build_model("mlp", (width,), width, depth=20, width=width, activation="tanh",
                        bias=False).double()
    x = torch.randn(64, width, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tinit.apply(model, "vi3nr", batch=x, generator=torch.Generator().manual_seed(1),
                activation="tanh", sigma_p=sigma_p)
    h = x.flatten(1)
    for layer in list(model)[1:]:
        h = layer(h)
        if isinstance(layer, torch.nn.Linear):
            assert h.var().item() == pytest.approx(sigma_p ** 2, rel=0.1)


def test_backward_condition_solver_reproduces_the_sigmoid_row():
    """Paper table: sigmoid meets forward and backward conditions at sigma_p = 6.8, gain^2
    104.28."""
    from trainlab.init.inr import vi3nr_backward_ratio

    s = tinit.vi3nr_sigma_p("sigmoid")
    assert vi3nr_backward_ratio("sigmoid", s) == pytest.approx(1.0, abs=1e-8)
    assert s == pytest.approx(6.8, abs=0.1)
    assert tinit.vi3nr_gain("sigmoid", 6.8) ** 2 == pytest.approx(104.28, abs=0.1)


def test_siren_bounds_and_variance():
    model = build_model("inr-mlp", (2,), 1, depth=3, width=256)
    tinit.apply(model, "siren", generator=torch.Generator().manual_seed(0))
    first, hidden = model[0].weight, model[2].weight
    assert first.abs().max() <= 1 / 2
    bound = math.sqrt(6 / 256) / 30
    assert hidden.abs().max() <= bound
    n = hidden.numel()
    assert abs(hidden.pow(2).mean().item() / (bound ** 2 / 3) - 1) < 4 * (0.8 / n) ** 0.5
    assert model(torch.rand(5, 2)).shape == (5, 1)
