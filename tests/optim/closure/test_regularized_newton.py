"""Gradient-regularized Newton with gradient-normalized smoothness (row 34): closed-form steps
on a quadratic and a cubic, Algorithm 1 (with its adaptive search) written out in the test, and
the GGN (approximate Hessian) variant on a small network."""

from __future__ import annotations

import torch
from torch.func import grad, hessian

from trainlab.optim.loss_closure import make_closure
from trainlab.optim.regularized_newton import RegularizedNewton

from .._function_closure import FunctionClosure
from .._tiny_mlp import batch, mse, tiny_mlp


def test_quadratic_step_is_the_closed_form():
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    a = m @ m.T + 0.1 * torch.eye(4, dtype=torch.float64)
    b = torch.randn(4, generator=gen, dtype=torch.float64)

    def f(w):
        return 0.5 * w @ a @ w - b @ w

    w0 = torch.ones(4, dtype=torch.float64)
    w = torch.nn.Parameter(w0.clone())
    RegularizedNewton([w], gamma0=0.7, adaptive=False).step(FunctionClosure(f, w))
    g = a @ w0 - b
    ref = w0 - torch.linalg.solve(a + g.norm() / 0.7 * torch.eye(4, dtype=torch.float64), g)
    torch.testing.assert_close(w.detach(), ref)


def test_cubic_step_is_the_closed_form():
    def f(w):
        return (w.abs() ** 3).sum() / 3

    w = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    RegularizedNewton([w], gamma0=1.0, adaptive=False).step(FunctionClosure(f, w))
    # g = x|x| = 4, H = 2|x| = 4, lambda = |g| / gamma = 4: step -4 / 8
    torch.testing.assert_close(w.detach(), torch.tensor([1.5], dtype=torch.float64))


def _algorithm1(f, x, steps, gamma):
    """Algorithm 1 of the paper (dense, exact Hessian), with its adaptive search."""
    gammas = []
    for _ in range(steps):
        fk, gk, h = f(x), grad(f)(x), hessian(f)(x)
        for _ in range(40):
            lam = gk.norm() / gamma
            d = -torch.linalg.solve(h + lam * torch.eye(x.numel(), dtype=x.dtype), gk)
            if fk - f(x + d) >= grad(f)(x + d).pow(2).sum() / (8 * lam):
                gamma *= 2.0
                break
            gamma *= 0.5
        x = x + d
        gammas.append(gamma)
    return x, gammas


def test_matches_algorithm_1_with_adaptive_search():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(6, 4, generator=gen, dtype=torch.float64)

    def f(w):
        return (w.abs() ** 3).sum() / 3 + torch.logsumexp(a @ w, 0) + 0.3 * w.sum()

    x0 = torch.tensor([3.0, -2.0, 1.0, 0.5], dtype=torch.float64)
    w = torch.nn.Parameter(x0.clone())
    opt = RegularizedNewton([w], gamma0=50.0)  # large gamma0: the search must back off
    gammas = []
    for _ in range(6):
        opt.step(FunctionClosure(f, w))
        gammas.append(float(opt.state[w]["gamma"]))
    ref, ref_gammas = _algorithm1(f, x0, 6, 50.0)
    torch.testing.assert_close(w.detach(), ref, rtol=1e-9, atol=1e-12)
    assert gammas == ref_gammas
    assert min(ref_gammas) < 50.0  # some trials were rejected
    assert grad(f)(w.detach()).norm() < 1e-3 * grad(f)(x0).norm()


def test_ggn_variant_decreases_a_network_loss():
    model, (x, y) = tiny_mlp(), batch()
    closure = make_closure(model, mse, x, y)
    start = float(closure())
    for solver in ("exact", "cg"):
        net = tiny_mlp()
        opt = RegularizedNewton(net.parameters(), curvature="ggn", solver=solver, cg_iters=100)
        for _ in range(5):
            opt.step(make_closure(net, mse, x, y))
        with torch.no_grad():
            assert float(mse(net(x), y)) < 0.6 * start


def test_gamma_kept_in_float64_across_steps():
    """The adaptive gamma is carried from step to step in full precision: with gamma0 = 0.7
    (not a float32 number) the run equals the float64 Algorithm 1 to 1e-12 and every gamma is
    0.7 times a power of two exactly (it was once stored as a float32 tensor)."""
    def f(w):
        return (w.abs() ** 3).sum() / 3 + 0.5 * (w ** 2).sum() + 0.3 * w.sum()

    x0 = torch.tensor([3.0, -2.0, 1.0], dtype=torch.float64)
    w = torch.nn.Parameter(x0.clone())
    opt = RegularizedNewton([w], gamma0=0.7)
    gammas = []
    for _ in range(4):
        opt.step(FunctionClosure(f, w))
        gammas.append(float(opt.state[w]["gamma"]))
    ref, ref_gammas = _algorithm1(f, x0, 4, 0.7)
    torch.testing.assert_close(w.detach(), ref, rtol=1e-12, atol=1e-14)
    assert gammas == ref_gammas
