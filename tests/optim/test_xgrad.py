"""XGrad: horizon 0 is the base optimizer; horizon s matches a plain weight-prediction loop."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim import XGrad

from ._problems import grads_at, initial_params, loss_fn


def _run_xgrad(horizon, steps=40, make_base=lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)):
    ps = [p.requires_grad_(True) for p in initial_params()]
    opt = XGrad(make_base(ps), horizon=horizon)
    for t in range(steps):
        def closure(t=t):
            opt.zero_grad()
            loss = loss_fn(ps, t)
            loss.backward()
            return loss
        opt.step(closure)
    return ps, opt


def test_horizon_zero_is_base():
    ours, _ = _run_xgrad(0)
    ps = [p.requires_grad_(True) for p in initial_params()]
    base = torch.optim.SGD(ps, lr=0.05, momentum=0.9)
    for t in range(40):
        base.zero_grad()
        loss_fn(ps, t).backward()
        base.step()
    for a, b in zip(ours, ps):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("horizon", [1, 2])
def test_sgd_momentum_reference(horizon):
    lr, mom = 0.05, 0.9
    w = [p.clone() for p in initial_params()]
    prev = None
    buf = None
    for t in range(40):
        pred = w if prev is None else [x + horizon * (x - xp) for x, xp in zip(w, prev)]
        g = grads_at(pred, t)
        buf = g if buf is None else [mom * b + gi for b, gi in zip(buf, g)]
        prev = w
        w = [x - lr * b for x, b in zip(w, buf)]
    ours, _ = _run_xgrad(horizon)
    for a, b in zip(ours, w):
        torch.testing.assert_close(a.detach(), b, rtol=1e-10, atol=1e-12)


def test_state_dict_resume():
    full, _ = _run_xgrad(1, steps=30)
    half, opt = _run_xgrad(1, steps=15)
    sd = opt.state_dict()
    ps = [p.detach().clone().requires_grad_(True) for p in half]
    opt2 = XGrad(torch.optim.SGD(ps, lr=0.05, momentum=0.9), horizon=1)
    opt2.load_state_dict(sd)
    for t in range(15, 30):
        def closure(t=t):
            opt2.zero_grad()
            loss = loss_fn(ps, t)
            loss.backward()
            return loss
        opt2.step(closure)
    for a, b in zip(ps, full):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-12, atol=1e-14)


def test_needs_closure():
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ConfigError, match="closure"):
        XGrad(torch.optim.SGD([p], lr=0.1)).step()


@pytest.mark.parametrize("horizon", [1, 3])
def test_plain_sgd_closed_form_on_a_diagonal_quadratic(horizon):
    """Over plain SGD on f(w) = 1/2 sum a_i w_i^2 each coordinate follows
    w_{t+1} = w_t - lr a ((1 + s) w_t - s w_{t-1}) after the unpredicted first step
    w_1 = (1 - lr a) w_0: a linear two-term recurrence whose solution is c1 r1^t + c2 r2^t,
    r1, r2 the (real, distinct) roots of r^2 - (1 - lr a (1 + s)) r - lr a s, c1, c2 fixed by
    w_0, w_1 (a negative root here: the prediction makes the iterates oscillate). Every
    iterate against that closed form."""
    a = torch.tensor([1.0, 0.5, 0.05], dtype=torch.float64)
    w0 = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    lr, s = 0.2, horizon
    closed = []
    for ai, xi in zip(a.tolist(), w0.tolist()):
        b, c = 1 - lr * ai * (1 + s), lr * ai * s
        disc = math.sqrt(b * b + 4 * c)
        r1, r2 = (b + disc) / 2, (b - disc) / 2
        x1 = (1 - lr * ai) * xi
        c1 = (x1 - r2 * xi) / (r1 - r2)
        c2 = xi - c1
        closed.append([c1 * r1 ** t + c2 * r2 ** t for t in range(41)])
    want = torch.tensor(closed, dtype=torch.float64).T
    w = torch.nn.Parameter(w0.clone())
    opt = XGrad(torch.optim.SGD([w], lr=lr), horizon=horizon)

    def closure():
        opt.zero_grad()
        loss = 0.5 * (a * w * w).sum()
        loss.backward()
        return loss

    for t in range(1, 41):
        opt.step(closure)
        torch.testing.assert_close(w.detach(), want[t], rtol=1e-9, atol=1e-12)
