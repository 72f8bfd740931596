"""Induced-metric optimizer (row 35): the Sherman-Morrison step against a dense solve of the
metric, the clipping bound, momentum and weight decay written out, and a short training run."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim import build_optimizer
from trainlab.optim.induced_metric import InducedMetric, InducedMetricAdam

from .._tiny_mlp import batch, flat_grads, flat_params, mse, tiny_mlp


def _loss_and_grad(model, x, y):
    model.zero_grad()
    loss = mse(model(x), y)
    loss.backward()
    return float(loss.detach()), flat_grads(model).clone()


@pytest.mark.parametrize("xi", [1.0, 0.3])
def test_step_is_the_dense_metric_solve(xi):
    model, (x, y) = tiny_mlp(), batch()
    w0 = flat_params(model)
    _, g = _loss_and_grad(model, x, y)
    InducedMetric(model.parameters(), lr=0.2, xi=xi).step()
    metric = torch.eye(g.numel(), dtype=g.dtype) + xi ** 2 * torch.outer(g, g)
    torch.testing.assert_close(flat_params(model), w0 - 0.2 * torch.linalg.solve(metric, g))
    torch.testing.assert_close(flat_grads(model), g)  # p.grad untouched


def test_momentum_and_weight_decay_written_out():
    model, (x, y) = tiny_mlp(), batch()
    opt = InducedMetric(model.parameters(), lr=0.1, xi=2.0, momentum=0.9, weight_decay=0.01)
    w, buf = flat_params(model), torch.zeros_like(flat_params(model))
    for _ in range(5):
        _, g = _loss_and_grad(model, x, y)
        opt.step()
        buf = 0.9 * buf + g / (1 + 4.0 * (g @ g))
        w = w * (1 - 0.1 * 0.01) - 0.1 * buf
    torch.testing.assert_close(flat_params(model), w)


def test_step_length_is_bounded_like_clipping():
    w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = InducedMetric([w], lr=1.0, xi=0.5)
    for scale in (1e-3, 2.0, 1e6):
        w.grad = torch.tensor([scale, -scale, scale], dtype=torch.float64)
        before = w.detach().clone()
        opt.step()
        assert (w.detach() - before).norm() <= 1.0 / (2 * 0.5) + 1e-12


def test_trajectory_on_an_isotropic_quadratic_is_the_scalar_recursion():
    """On f(w) = 1/2 |w - w*|^2 the gradient is e = w - w*, and the metric I + xi^2 e e^T maps
    e to e / (1 + xi^2 |e|^2) (Sherman-Morrison): every iterate, and the momentum buffer, stays
    on the line w* + c e_0. With r = |e_0| the whole run is the scalar recursion
    b <- m b + c / (1 + xi^2 c^2 r^2), c <- c - lr b, here over 100 steps from far away
    (xi r = 10: the clipped regime first, then the plain heavy-ball regime)."""
    gen = torch.Generator().manual_seed(0)
    w_star = torch.randn(5, generator=gen, dtype=torch.float64)
    e0 = torch.randn(5, generator=gen, dtype=torch.float64)
    e0 = e0 / e0.norm() * 20.0
    xi, lr, mom = 0.5, 0.5, 0.9
    w = torch.nn.Parameter(w_star + e0)
    opt = build_optimizer("induced-metric", [w], lr=lr, xi=xi, momentum=mom)
    c, b, r2 = 1.0, 0.0, float(e0 @ e0)
    for _ in range(100):
        w.grad = (w - w_star).detach().clone()
        opt.step()
        b = mom * b + c / (1 + xi ** 2 * c * c * r2)
        c = c - lr * b
        torch.testing.assert_close(w.detach(), w_star + c * e0, rtol=1e-12, atol=1e-12)
    assert abs(c) < 1e-2  # it converged, far below the start (|e| from 20 to < 0.2)
    with pytest.raises(ConfigError, match="'xi'"):
        InducedMetric([w], xi=0.0)


def test_adam_variant_without_averaging_is_the_dense_metric_solve():
    """momentum = beta = 0: one step is G^-1 g with G = diag(sqrt(v^) + eps) + xi^2 g g^T."""
    model, (x, y) = tiny_mlp(), batch()
    opt = InducedMetricAdam(model.parameters(), lr=0.1, xi=0.7, momentum=0.0, beta=0.0,
                            beta_rms=0.9, eps=1e-3)
    v = torch.zeros_like(flat_params(model))
    for step in range(1, 4):
        w0 = flat_params(model)
        _, g = _loss_and_grad(model, x, y)
        opt.step()
        v = 0.9 * v + 0.1 * g * g
        metric = torch.diag((v / (1 - 0.9 ** step)).sqrt() + 1e-3) + 0.49 * torch.outer(g, g)
        torch.testing.assert_close(flat_params(model), w0 - 0.1 * torch.linalg.solve(metric, g))


def test_adam_variant_matches_the_authors_recursion():
    """The recursion of the authors' custom_sgd_rms, written out in float64 over 6 steps."""
    model, (x, y) = tiny_mlp(), batch()
    lr, xi2, mom, beta, brms, eps, wd = 0.05, 0.1, 0.9, 0.1, 0.99, 1e-8, 0.01
    opt = build_optimizer("induced-metric-adam", model.parameters(), lr=lr,
                          weight_decay=wd)
    assert opt.defaults["xi"] ** 2 == pytest.approx(xi2)
    w = flat_params(model)
    m, v, s = torch.zeros_like(w), torch.zeros_like(w), 0.0
    for t in range(1, 7):
        _, g = _loss_and_grad(model, x, y)
        opt.step()
        v = brms * v + (1 - brms) * g * g
        r = (v / (1 - brms ** t)).sqrt() + eps
        s = beta * s + (1 - beta) * xi2 * float((g * g / r).sum())
        scale = 1 / (1 + abs(s / (1 - beta ** t)))
        m = mom * m + (1 - mom) * g
        w = w - lr * scale * m / ((1 - mom ** t) * r) - lr * wd * w
        torch.testing.assert_close(flat_params(model), w)
    with pytest.raises(ConfigError, match="'beta'"):
        InducedMetricAdam(model.parameters(), beta=1.0)


def test_sgd_variant_matches_the_authors_recursion():
    """The recursion of the authors' custom_sgd (D = I), written out in float64 over 6 steps."""
    model, (x, y) = tiny_mlp(), batch()
    lr, xi2, mom, beta = 0.2, 0.1, 0.9, 0.1
    opt = build_optimizer("induced-metric-ema", model.parameters(), lr=lr)
    w = flat_params(model)
    m, s = torch.zeros_like(w), 0.0
    for t in range(1, 7):
        _, g = _loss_and_grad(model, x, y)
        opt.step()
        s = beta * s + (1 - beta) * xi2 * float(g @ g)
        m = mom * m + (1 - mom) * g
        w = w - lr / (1 + abs(s / (1 - beta ** t))) * m / (1 - mom ** t)
        torch.testing.assert_close(flat_params(model), w)
