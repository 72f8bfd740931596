"""IFT hypergradients vs closed-form and unrolled differentiation; Entropy-SGD vs its paper
recurrence."""

from __future__ import annotations

import pytest
import torch

from trainlab.optim import build_optimizer
from trainlab.optim.loss_closure import make_closure
from trainlab.optim.procedures import ift_hypergradient

from .._tiny_mlp import flat_grads, flat_params, functional, mse


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


def test_noiseless_entropy_sgd_is_gradient_descent_on_the_moreau_envelope():
    """Without noise the inner Langevin loop is gradient descent on f(x') + gamma/2 |x' - x|^2,
    which converges to the proximal point; the local-entropy gradient gamma (x - <x'>) becomes
    the gradient of the Moreau envelope. On f(w) = 1/2 (w - w*)^T A (w - w*) that is
    gamma (A + gamma I)^-1 A (x - w*), so T outer steps of size lr give, in closed form,
    x_T - w* = (I - lr gamma (A + gamma I)^-1 A)^T (x_0 - w*) (Chaudhari et al. 2017, Sec. 3,
    papers.md row 53; the zero-temperature limit)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g, dtype=torch.float64) * torch.tensor([2.0, 1.0, 0.5, 0.2],
                                                                             dtype=torch.float64)
    y = torch.randn(32, 1, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 4, generator=g, dtype=torch.float64) * 3)
    a = x.T @ x / 32  # mse = 1/2 mean (x w - y)^2: Hessian A, minimizer w*
    w_star = torch.linalg.solve(a, x.T @ y[:, 0] / 32)
    e0 = model.weight.detach()[0] - w_star
    lr, gamma, steps = 1.0, 0.5, 15
    opt = build_optimizer("entropy-sgd", model.parameters(), lr=lr, inner_steps=300,
                          gamma=gamma, inner_lr=0.2, noise=0.0, alpha=1.0)
    closure = make_closure(model, mse, x, y)
    for _ in range(steps):
        opt.step(closure)
    eye = torch.eye(4, dtype=torch.float64)
    contraction = eye - lr * gamma * torch.linalg.solve(a + gamma * eye, a)
    expected = w_star + torch.linalg.matrix_power(contraction, steps) @ e0
    torch.testing.assert_close(model.weight.detach()[0], expected, rtol=1e-9, atol=1e-11)
    # and it is not plain gradient descent with the same outer step on f
    gd = w_star + torch.linalg.matrix_power(eye - lr * gamma * a, steps) @ e0
    assert (gd - expected).norm() > 1e-2


def test_entropy_sgd_matches_the_authors_code_without_noise(problem):
    """Against the authors' PyTorch EntropySGD (ucla-vision/entropy-sgd, python/optim.py,
    momentum 0, weight decay 0, g1 = 0, eps = 0), restated in float64: L Langevin steps of
    rate 0.1 on f(x') - g <x - x', .>, the mean mw <- 0.75 mw + 0.25 x' started at x, then
    x <- x - lr (x - mw). Their code weights the running mean the other way round from the
    paper's Algorithm 1 (beta1 = 0.75 on the old mean, i.e. the paper's alpha = 0.25) and
    leaves gamma out of the outer gradient (folded into lr): our alpha = 0.25 and
    lr = theirs / gamma give the same iterates."""
    model, x, y = problem
    f, w = functional(model, x, y)
    g, lr, steps = 0.5, 0.2, 5
    opt = build_optimizer("entropy-sgd", model.parameters(), lr=lr / g, inner_steps=steps,
                          gamma=g, inner_lr=0.1, noise=0.0, alpha=0.25)
    closure = make_closure(model, mse, x, y)
    for _ in range(4):
        opt.step(closure)
        wc, mw = w.clone(), w.clone()
        xp = w.clone()
        for _ in range(steps):
            xp = xp - 0.1 * (torch.func.grad(f)(xp) - g * (wc - xp))
            mw = 0.75 * mw + 0.25 * xp
        w = wc - lr * (wc - mw)
        torch.testing.assert_close(flat_params(model), w, rtol=1e-12, atol=1e-14)
