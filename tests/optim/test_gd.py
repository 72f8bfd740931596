"""GD / heavy ball / Nesterov: torch SGD, plain recurrences and analytic rates on quadratics."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.optim import GradientDescent

from ._problems import assert_close_lists, run


def _quadratic(n=8, mu=0.5, big_l=4.0):
    eig = torch.linspace(mu, big_l, n, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(0),
                                       dtype=torch.float64))
    a = q @ torch.diag(eig) @ q.T
    x_star = torch.linspace(-1, 1, n, dtype=torch.float64)
    return a, x_star


def _errors(opt_factory, steps, a, x_star):
    x = torch.zeros_like(x_star, requires_grad=True)
    opt = opt_factory([x])
    errs = []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (x - x_star) @ a @ (x - x_star)).backward()
        opt.step()
        errs.append(float(torch.linalg.vector_norm(x.detach() - x_star)))
    return errs


def test_heavy_ball_equals_torch_sgd_momentum():
    ours, _ = run(lambda p: GradientDescent(p, lr=0.02, momentum=0.9), 200)
    ref, _ = run(lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9), 200)
    assert_close_lists(ours, ref, rtol=1e-10, atol=1e-12)


def test_gd_rate_on_quadratic():
    mu, big_l = 0.5, 4.0
    a, xs = _quadratic(mu=mu, big_l=big_l)
    errs = _errors(lambda p: GradientDescent(p, lr=2 / (mu + big_l)), 60, a, xs)
    rate = (errs[59] / errs[29]) ** (1 / 30)
    assert rate == pytest.approx((big_l - mu) / (big_l + mu), rel=1e-3)


def test_heavy_ball_optimal_rate_on_quadratic():
    mu, big_l = 0.01, 4.0
    a, xs = _quadratic(mu=mu, big_l=big_l)
    sl, sm = math.sqrt(big_l), math.sqrt(mu)
    h, beta = 4 / (sl + sm) ** 2, ((sl - sm) / (sl + sm)) ** 2
    errs = _errors(lambda p: GradientDescent(p, lr=h, momentum=beta), 300, a, xs)
    rate = (errs[299] / errs[99]) ** (1 / 200)
    # every mode contracts at sqrt(beta); the extreme ones are Jordan blocks (k q^k factor)
    assert rate == pytest.approx(math.sqrt(beta), rel=1e-2)
    assert rate < (big_l - mu) / (big_l + mu) - 0.05  # much faster than the best GD rate


def test_nesterov_reference_recurrence_and_rate():
    mu, big_l = 0.5, 4.0
    a, xs = _quadratic(mu=mu, big_l=big_l)
    h = 1 / big_l
    kappa = big_l / mu
    beta = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    x_prev = torch.zeros_like(xs)
    y = x_prev.clone()
    ref = []
    for _ in range(50):
        x_new = y - h * (a @ (y - xs))
        y = x_new + beta * (x_new - x_prev)
        x_prev = x_new
        ref.append(y.clone())
    x = torch.zeros_like(xs, requires_grad=True)
    opt = GradientDescent([x], lr=h, momentum=beta, nesterov=True)
    for k in range(50):
        opt.zero_grad()
        (0.5 * (x - xs) @ a @ (x - xs)).backward()
        opt.step()
        torch.testing.assert_close(x.detach(), ref[k], rtol=1e-12, atol=1e-14)
    # Nesterov's bound: f(x_k) - f* <= (1 - 1/sqrt(kappa))^k (f(x0) - f* + mu/2 |x0 - x*|^2)
    xk = opt.state[x]["anchor"]
    f = lambda z: float(0.5 * (z - xs) @ a @ (z - xs))  # noqa: E731
    x0 = torch.zeros_like(xs)
    bound = (1 - 1 / math.sqrt(kappa)) ** 50 * (f(x0) + mu / 2 * float((x0 - xs) @ (x0 - xs)))
    assert f(xk) <= bound


def test_polyak_step_on_quadratic():
    a, xs = _quadratic()
    x = torch.zeros_like(xs, requires_grad=True)
    opt = GradientDescent([x], lr=1.0, step_rule="polyak", f_star=0.0)
    ref = torch.zeros_like(xs)
    for _ in range(30):
        def closure():
            opt.zero_grad()
            loss = 0.5 * (x - xs) @ a @ (x - xs)
            loss.backward()
            return loss
        opt.step(closure)
        g = a @ (ref - xs)
        ref = ref - float(0.5 * (ref - xs) @ a @ (ref - xs)) / float(g @ g) * g
    torch.testing.assert_close(x.detach(), ref, rtol=1e-10, atol=1e-12)
    assert float(torch.linalg.vector_norm(ref - xs)) < 1e-2


def test_polyak_without_closure_raises():
    x = torch.zeros(2, requires_grad=True)
    x.grad = torch.ones(2)
    with pytest.raises(ValueError, match="closure"):
        GradientDescent([x], step_rule="polyak").step()
