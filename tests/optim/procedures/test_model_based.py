"""Stochastic model-based methods (row 105): each step is the exact minimizer of its model
plus the proximal term (checked against a dense search and random perturbations), and each
method converges on a noiseless robust phase-retrieval instance."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim.procedures.model_based import (
    phase_retrieval_loss,
    prox_linear_step,
    proximal_point_step,
    stochastic_model_based,
    subgradient_step,
)


def _term(a, b):
    return lambda y: ((a @ y) ** 2 - b).abs()


def _prox_linear_model(x, a, b):
    u = a @ x
    return lambda y: (u * u - b + 2 * u * (a @ (y - x))).abs()


def _cases():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        x = torch.randn(4, generator=g, dtype=torch.float64)
        a = torch.randn(4, generator=g, dtype=torch.float64)
        b = float(torch.rand((), generator=g, dtype=torch.float64) * 4)
        step = float(10 ** torch.empty(()).uniform_(-2, 1, generator=g))
        yield x, a, b, step


def _check_minimizer(y, x, model, step, a):
    obj = lambda z: float(model(z) + ((z - x) ** 2).sum() / (2 * step))  # noqa: E731
    best = obj(y)
    g = torch.Generator().manual_seed(1)
    for scale in (1e-4, 1e-2, 1.0):
        for _ in range(50):
            assert best <= obj(y + scale * torch.randn(4, generator=g, dtype=torch.float64)) \
                + 1e-12
    # dense search along a (the minimizer lies on x + s a)
    s = torch.linspace(-20, 20, 400_001, dtype=torch.float64) / float(a @ a) ** 0.5
    zs = x + s[:, None] * a
    vals = torch.vmap(model)(zs) + ((zs - x) ** 2).sum(1) / (2 * step)
    assert best <= float(vals.min()) + 1e-9


@pytest.mark.parametrize("case", list(_cases()))
def test_proximal_point_step_is_the_exact_prox(case):
    x, a, b, step = case
    _check_minimizer(proximal_point_step(x, a, b, step), x, _term(a, b), step, a)


@pytest.mark.parametrize("case", list(_cases()))
def test_prox_linear_step_is_the_exact_prox_of_the_model(case):
    x, a, b, step = case
    _check_minimizer(prox_linear_step(x, a, b, step), x, _prox_linear_model(x, a, b), step, a)


def test_subgradient_step_uses_the_autograd_subgradient():
    for x, a, b, step in _cases():
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(_term(a, b)(xr), xr)
        torch.testing.assert_close(subgradient_step(x, a, b, step), x - step * g)


def _instance():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 10, generator=g, dtype=torch.float64)
    xs = torch.randn(10, generator=g, dtype=torch.float64)
    xs = xs / xs.norm()
    x0 = xs + 0.3 * torch.randn(10, generator=g, dtype=torch.float64) / 10**0.5
    return a, (a @ xs) ** 2, xs, x0


def _dist(x, xs):
    return float(min((x - xs).norm(), (x + xs).norm()))


@pytest.mark.parametrize("method", ["prox_linear", "proximal_point"])
def test_prox_methods_recover_the_signal(method):
    a, b, xs, x0 = _instance()
    res = stochastic_model_based(x0, a, b, method=method, step=0.05, iterations=1500,
                                 generator=torch.Generator().manual_seed(1), record_every=500)
    assert _dist(res.x, xs) < 1e-10
    assert res.losses[-1] < 1e-10 < float(phase_retrieval_loss(x0, a, b))


def test_subgradient_reaches_a_step_sized_neighbourhood():
    a, b, xs, x0 = _instance()
    d0 = _dist(x0, xs)
    small = stochastic_model_based(x0, a, b, method="subgradient", step=1e-3, iterations=1000,
                                   generator=torch.Generator().manual_seed(1))
    big = stochastic_model_based(x0, a, b, method="subgradient", step=1e-2, iterations=1000,
                                 generator=torch.Generator().manual_seed(1))
    assert _dist(small.x, xs) < 0.03 < 0.2 * d0
    assert _dist(small.x, xs) < _dist(big.x, xs)


def test_validation():
    a, b, _, x0 = _instance()
    with pytest.raises(ConfigError, match="method"):
        stochastic_model_based(x0, a, b, method="newton", step=0.1, iterations=1)
    with pytest.raises(ConfigError, match="step"):
        stochastic_model_based(x0, a, b, method="subgradient", step=0.0, iterations=1)
    with pytest.raises(ConfigError, match=r"\(m, d\)"):
        stochastic_model_based(x0[:3], a, b, method="subgradient", step=0.1, iterations=1)
