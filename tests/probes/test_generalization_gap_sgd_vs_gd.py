"""Row 46's second-order result: one SGD epoch against as many GD steps, with the expectation
over training sets computed exactly by enumerating every training set drawn from a finite
population."""

from __future__ import annotations

import itertools

import pytest
import torch

from trainlab.analyses import ANALYSES
from trainlab.analyses.generalization_gap import expected_sgd_minus_gd
from trainlab.probes.generalization_gap import gradient_noise_terms

X = torch.tensor([[1.0, 0.3], [-0.4, 1.2], [0.8, -0.9]], dtype=torch.float64)
Y = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)


def per_example_grads(theta):
    return (X @ theta - Y)[:, None] * X  # l_p = (x_p . theta - y_p)^2 / 2


def population_loss(theta):
    return 0.5 * ((X @ theta - Y) ** 2).mean()


def trace_cov(theta):
    g = per_example_grads(theta)
    return (g * g).sum(1).mean() - (g.mean(0) ** 2).sum()


def run(theta, batches, lr):
    for batch in batches:
        theta = theta - lr * per_example_grads(theta)[list(batch)].mean(0)
    return theta


@pytest.mark.parametrize("n,m", [(4, 2), (4, 4), (3, 3)])
def test_expected_sgd_minus_gd_matches_exact_enumeration(n, m):
    theta0 = torch.tensor([0.2, -0.7], dtype=torch.float64)
    lr = 1e-3
    d_theta = torch.zeros(2, dtype=torch.float64)
    d_loss = torch.zeros((), dtype=torch.float64)
    sets = list(itertools.product(range(len(X)), repeat=n))  # every i.i.d. training set
    size = n // m
    for data in sets:
        sgd = run(theta0, [data[k * size:(k + 1) * size] for k in range(m)], lr)
        gd = run(theta0, [data] * m, lr)
        d_theta += (sgd - gd) / len(sets)
        d_loss += (population_loss(sgd) - population_loss(gd)) / len(sets)
    mu = torch.func.grad(population_loss)(theta0)
    drift, change = expected_sgd_minus_gd(lr, m, n, mu, torch.func.grad(trace_cov)(theta0))
    assert float(drift.norm()) > 0
    torch.testing.assert_close(d_theta, drift, rtol=2e-2, atol=0)
    assert float(d_loss) == pytest.approx(float(change), rel=2e-2)
    assert ANALYSES.get("sgd-minus-gd") is expected_sgd_minus_gd


def test_one_batch_is_gradient_descent():
    mu = torch.ones(3)
    drift, change = expected_sgd_minus_gd(0.1, 1, 10, mu, torch.ones(3))
    assert float(drift.abs().max()) == 0.0 and float(change) == 0.0


def test_gradient_noise_terms_of_a_linear_model_match_the_closed_form():
    model = torch.nn.Linear(2, 1, bias=False).double()
    theta0 = torch.tensor([0.2, -0.7], dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(theta0[None])

    def loss_fn(out, y):
        return 0.5 * ((out[:, 0] - y) ** 2).mean()

    mean, value, d_trace = gradient_noise_terms(model, loss_fn, X, Y)
    unbiased = len(X) / (len(X) - 1)
    torch.testing.assert_close(mean, per_example_grads(theta0).mean(0))
    torch.testing.assert_close(value, unbiased * trace_cov(theta0))
    torch.testing.assert_close(d_trace, unbiased * torch.func.grad(trace_cov)(theta0))
    assert torch.equal(model.weight.detach()[0], theta0)
