"""IFT hypergradients vs closed-form and unrolled differentiation; Entropy-SGD vs its paper
recurrence."""

from __future__ import annotations

import pytest
import torch

from trainlab.optim import build_optimizer
from trainlab.optim.loss_closure import make_closure
from trainlab.optim.procedures import ift_hypergradient

from .._tiny_mlp import clone, flat_grads, flat_params, functional, mse


def _ridge():
    g = torch.Generator().manual_seed(0)
    xt, xv = (torch.randn(n, 4, generator=g, dtype=torch.float64) for n in (30, 20))
    w_true = torch.randn(4, generator=g, dtype=torch.float64)
    yt = xt @ w_true + 0.3 * torch.randn(30, generator=g, dtype=torch.float64)
    yv = xv @ w_true + 0.3 * torch.randn(20, generator=g, dtype=torch.float64)

    def train(w, lam):  # per-feature log weight decay
        return 0.5 * ((xt @ w - yt) ** 2).mean() + 0.5 * (lam.exp() * w * w).sum()

    def val(w, lam):
        return 0.5 * ((xv @ w - yv) ** 2).mean()

    def solve(lam):
        a = xt.T @ xt / 30 + torch.diag(lam.exp())
        return torch.linalg.solve(a, xt.T @ yt / 30)

    return train, val, solve


def test_ift_matches_closed_form_and_unrolled_differentiation():
    train, val, solve = _ridge()
    lam = torch.tensor([-1.0, -2.0, 0.0, -0.5], dtype=torch.float64)
    # closed form: differentiate through the exact solve
    lr = lam.clone().requires_grad_(True)
    exact = torch.autograd.grad(val(solve(lr), lr), lr)[0]
    # unrolled: differentiate through 400 steps of gradient descent
    lu = lam.clone().requires_grad_(True)
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    for _ in range(400):
        w = w - 0.3 * torch.autograd.grad(train(w, lu), w, create_graph=True)[0]
    unrolled = torch.autograd.grad(val(w, lu), lu)[0]
    torch.testing.assert_close(unrolled, exact, rtol=1e-6, atol=1e-9)
    res = ift_hypergradient(train, val, solve(lam), lam, neumann_steps=300, alpha=0.3)
    torch.testing.assert_close(res.hypergrad, exact, rtol=1e-6, atol=1e-9)
    few = ift_hypergradient(train, val, solve(lam), lam, neumann_steps=3, alpha=0.3)
    assert (few.hypergrad - exact).norm() > (res.hypergrad - exact).norm()


def _entropy_reference(f, x, shapes, *, steps, gamma, eta, noise, alpha, gen, lr):
    """Algorithm 1 of the paper, written plainly on the flat parameter vector."""
    from torch.func import grad

    xp, mu = x.clone(), x.clone()
    for _ in range(steps):
        xp = xp - eta * (grad(f)(xp) - gamma * (x - xp))
        if noise:  # one draw per parameter tensor, in parameter order
            xi = torch.cat([torch.randn(s, generator=gen, dtype=torch.float64).reshape(-1)
                            for s in shapes])
            xp = xp + eta ** 0.5 * noise * xi
        mu = (1 - alpha) * mu + alpha * xp
    return x - lr * gamma * (x - mu)


@pytest.mark.parametrize("noise", [0.0, 1e-2])
def test_entropy_sgd_matches_paper_recurrence(problem, noise):
    model, x, y = problem
    f, w = functional(model, x, y)
    shapes = [p.shape for p in model.parameters()]
    ref = _entropy_reference(f, w, shapes, steps=5, gamma=0.5, eta=0.1, noise=noise, alpha=0.75,
                             gen=torch.Generator().manual_seed(7), lr=1.0)
    opt = build_optimizer("entropy-sgd", model.parameters(), lr=1.0, inner_steps=5, gamma=0.5,
                          noise=noise, generator=torch.Generator().manual_seed(7))
    opt.step(make_closure(model, mse, x, y))
    torch.testing.assert_close(flat_params(model), ref)
    torch.testing.assert_close(flat_grads(model), torch.func.grad(f)(w))


def test_entropy_sgd_trains_tiny_regression(problem):
    model, x, y = problem
    m = clone(model)
    opt = build_optimizer("entropy-sgd", m.parameters(), lr=1.0, inner_steps=5, gamma=1.0,
                          momentum=0.9, nesterov=True, generator=torch.Generator().manual_seed(0))
    closure = make_closure(m, mse, x, y)
    first = closure().item()
    for _ in range(60):
        loss = opt.step(closure)
    assert loss.item() < 0.6 * first
