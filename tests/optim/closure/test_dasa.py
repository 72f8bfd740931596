"""DASA/OASIS (row 18) against a plain reference of the paper's update, exact Newton on a
diagonal quadratic, and the unbiasedness of the Hutchinson diagonal."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import grad, hessian

from trainlab.optim.dasa import DASA, hutchinson_diagonal

from .._function_closure import FunctionClosure


def _logistic():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=gen, dtype=torch.float64)
    y = torch.sign(torch.randn(40, generator=gen, dtype=torch.float64))

    def f(w):
        return torch.nn.functional.softplus(-y * (x @ w)).mean() + 0.05 * (w ** 2).sum() \
            + 0.01 * (w ** 4).sum()

    return f


def _reference(f, w0, *, lr, beta2, alpha, init_samples, steps, gen, adaptive):
    """OASIS written from the paper's equations (dense Hessian, same probe order)."""
    n = w0.numel()

    def probe():
        return (2 * torch.randint(0, 2, (n,), generator=gen) - 1).to(w0.dtype)

    def zhz(w):
        h = hessian(f)(w)
        return probe_mean(h, 1)

    def probe_mean(h, k):
        zs = [probe() for _ in range(k)]
        return sum(z * (h @ z) for z in zs) / k

    d = probe_mean(hessian(f)(w0), init_samples)
    w_prev, w = w0, w0 - lr * grad(f)(w0) / d.abs().clamp_min(alpha)
    eta_prev, theta = lr, math.inf
    for _ in range(steps - 1):
        d = beta2 * d + (1 - beta2) * zhz(w)
        dh = d.abs().clamp_min(alpha)
        eta = lr
        if adaptive:
            dw, dg = w - w_prev, grad(f)(w) - grad(f)(w_prev)
            eta = min(math.sqrt(1 + theta) * eta_prev,
                      0.5 * math.sqrt(float(dw @ (dh * dw)) / float(dg @ (dg / dh))))
            theta = eta / eta_prev
        w_prev, w = w, w - eta * grad(f)(w) / dh
        eta_prev = eta
    return w


def test_matches_paper_update():
    f = _logistic()
    w0 = torch.linspace(-0.5, 0.5, 5, dtype=torch.float64)
    for adaptive in (True, False):
        hyper = dict(lr=0.5, beta2=0.9, alpha=1e-3, init_samples=3, adaptive=adaptive)
        w = torch.nn.Parameter(w0.clone())
        opt = DASA([w], generator=torch.Generator().manual_seed(7), **hyper)
        for _ in range(6):
            opt.step(FunctionClosure(f, w))
        ref = _reference(f, w0, steps=6, gen=torch.Generator().manual_seed(7), **hyper)
        torch.testing.assert_close(w.detach(), ref, rtol=1e-10, atol=1e-12)
        assert f(w.detach()) < f(w0)


def test_exact_newton_on_a_diagonal_quadratic():
    h = torch.tensor([100.0, 1.0, 0.01], dtype=torch.float64)
    b = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

    def f(w):
        return 0.5 * (h * w * w).sum() - b @ w

    w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    DASA([w], lr=1.0, alpha=1e-6, adaptive=False).step(FunctionClosure(f, w))
    torch.testing.assert_close(w.detach(), b / h)  # z * (H z) = diag(H) for diagonal H


def test_hutchinson_diagonal_is_unbiased():
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(1),
                                       dtype=torch.float64))
    h = q @ torch.diag(torch.tensor([5.0, 3.0, 1.0, -1.0, 0.5, 2.0], dtype=torch.float64)) @ q.T
    gen = torch.Generator().manual_seed(0)
    like = torch.zeros(6, dtype=torch.float64)
    draws = torch.stack([hutchinson_diagonal(h.__matmul__, like, 1, gen) for _ in range(1000)])
    z = (draws.mean(0) - torch.diag(h)) / (draws.std(0) / 1000 ** 0.5)
    assert z.abs().max() < 4.0


def test_adaptive_step_closed_form_on_a_diagonal_quadratic():
    """On f(w) = 1/2 sum h_i (w_i - c_i)^2 every Rademacher product z * (H z) is diag(H), so
    D_k = H at every step and D^-1 g = w - c: each step shrinks the error by (1 - eta_k). The
    local ratio |dw|_D / (2 |dg|*_D) is exactly 1/2 (dg = H dw), and theta_0 = inf, so
    eta_0 = lr and eta_k = 1/2 after: w_K - c = (1 - lr) 2^-(K-1) (w_0 - c), whatever the
    conditioning (here 1e4)."""
    h = torch.tensor([100.0, 1.0, 0.01], dtype=torch.float64)
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

    def f(w):
        return 0.5 * (h * (w - c) ** 2).sum()

    w0 = torch.tensor([3.0, 1.0, -4.0], dtype=torch.float64)
    w = torch.nn.Parameter(w0.clone())
    opt = DASA([w], lr=0.1, beta2=0.9, alpha=1e-6, init_samples=2,
               generator=torch.Generator().manual_seed(3))
    for k in range(1, 9):
        opt.step(FunctionClosure(f, w))
        torch.testing.assert_close(w.detach() - c, 0.9 * 0.5 ** (k - 1) * (w0 - c),
                                   rtol=1e-12, atol=1e-14)
        assert float(opt.state[w]["eta"]) == pytest.approx(0.1 if k == 1 else 0.5, rel=1e-12)
