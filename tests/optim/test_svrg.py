"""SVRG against the review's Algorithm 5.1 written out in the test, and its linear
convergence with a constant step where SGD stalls at its noise floor."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim import build_optimizer

N, D = 12, 4


def _data(seed=0, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(N, D, generator=g, dtype=torch.float64)
    b = a @ torch.randn(D, generator=g, dtype=torch.float64) \
        + noise * torch.randn(N, generator=g, dtype=torch.float64)
    return a, b


def _grad_i(a, b, w, i):  # f_i(w) = 0.5 (a_i w - b_i)^2
    return (a[i] @ w - b[i]) * a[i]


def _reference(a, b, w0, lr, m, order):
    w = w0.clone()
    for j, i in enumerate(order):
        if j % m == 0:
            snap = w.clone()
            mu = a.T @ (a @ snap - b) / N
        w = w - lr * (_grad_i(a, b, w, i) - _grad_i(a, b, snap, i) + mu)
    return w


def _run(a, b, w0, lr, m, order, name="svrg"):
    w = w0.clone().requires_grad_(True)

    def full():
        w.grad = None
        loss = 0.5 * ((a @ w - b) ** 2).mean()
        loss.backward()
        return loss

    hyper = {"inner_steps": m, "full_closure": full} if name == "svrg" else {}
    opt = build_optimizer(name, [w], lr=lr, **hyper)
    for i in order:
        def closure(i=i):
            opt.zero_grad()
            loss = 0.5 * (a[i] @ w - b[i]) ** 2
            loss.backward()
            return loss
        if name == "svrg":
            opt.step(closure)
        else:
            closure()
            opt.step()
    return w.detach()


def test_matches_reference_recursion():
    a, b = _data()
    g = torch.Generator().manual_seed(1)
    order = torch.randint(0, N, (40,), generator=g).tolist()
    w0 = torch.zeros(D, dtype=torch.float64)
    ours = _run(a, b, w0, 0.05, 7, order)
    torch.testing.assert_close(ours, _reference(a, b, w0, 0.05, 7, order), rtol=1e-12,
                               atol=1e-13)


def test_grad_after_step_is_the_minibatch_gradient_at_the_pre_step_weights():
    a, b = _data()
    w = torch.zeros(D, dtype=torch.float64, requires_grad=True)
    opt = build_optimizer("svrg", [w], lr=0.05, inner_steps=3)
    for i in (0, 5, 3, 7):
        before = w.detach().clone()

        def closure(i=i):
            opt.zero_grad()
            loss = 0.5 * (a[i] @ w - b[i]) ** 2
            loss.backward()
            return loss
        opt.step(closure)
        torch.testing.assert_close(w.grad, _grad_i(a, b, before, i))


def test_linear_convergence_with_constant_step_where_sgd_stalls():
    a, b = _data()
    w_star = torch.linalg.lstsq(a, b.unsqueeze(1)).solution.squeeze(1)
    g = torch.Generator().manual_seed(2)
    order = torch.randint(0, N, (600,), generator=g).tolist()
    w0 = torch.zeros(D, dtype=torch.float64)
    svrg = _run(a, b, w0, 0.05, 2 * N, order)
    sgd = _run(a, b, w0, 0.05, 2 * N, order, name="sgd")
    assert torch.linalg.vector_norm(svrg - w_star) < 1e-8
    assert torch.linalg.vector_norm(sgd - w_star) > 1e-3


def test_validation():
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ConfigError, match="inner_steps"):
        build_optimizer("svrg", [w], lr=0.1, inner_steps=0)
    with pytest.raises(ConfigError, match="full_closure"):
        build_optimizer("svrg", [w], lr=0.1, full_closure=3)
    with pytest.raises(ConfigError, match="closure"):
        build_optimizer("svrg", [w], lr=0.1).step()
