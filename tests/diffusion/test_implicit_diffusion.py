"""Row 119 (Implicit Diffusion): the energy gradients against autograd, the covariance
gradient estimator against the exact gradient of the closed-form objective, and the
objective's quadrature against Monte Carlo."""

from __future__ import annotations

import math

import torch

from trainlab.diffusion.marion2024_implicit_diffusion import (
    covariance_gradient,
    energy_grads,
    exact_objective,
    hexagon_centres,
    reward,
    single_loop,
)

C = hexagon_centres()
THETA = torch.tensor([1.5, 0.0, 1.5, 0.0, 1.5, 0.0], dtype=torch.float64)


def _energy(x, theta):
    logw = torch.log_softmax(theta, 0)
    return -torch.logsumexp(logw - 0.5 * (x[:, None, :] - C).pow(2).sum(-1), 1)


def _mixture_samples(theta, n, g):
    k = torch.multinomial(torch.softmax(theta, 0), n, replacement=True, generator=g)
    return C[k] + torch.randn(n, 2, generator=g, dtype=torch.float64)


def test_energy_gradients_match_autograd():
    g = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(7, 2, generator=g, dtype=torch.float64).requires_grad_(True)
    theta = torch.randn(6, generator=g, dtype=torch.float64).requires_grad_(True)
    gx, gt = energy_grads(x.detach(), theta.detach(), C)
    v = _energy(x, theta)
    (ax,) = torch.autograd.grad(v.sum(), x, retain_graph=True)
    rows = [torch.autograd.grad(v[i], theta, retain_graph=True)[0] for i in range(7)]
    assert torch.allclose(gx, ax, atol=1e-12) and torch.allclose(gt, torch.stack(rows),
                                                                 atol=1e-12)


def test_covariance_estimator_matches_the_exact_gradient():
    n = 200000
    x = _mixture_samples(THETA, n, torch.Generator().manual_seed(1))
    _, gt = energy_grads(x, THETA, C)
    r = reward(x)
    est = covariance_gradient(r, gt)
    th = THETA.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(exact_objective(th, C), th)
    terms = -(r - r.mean())[:, None] * (gt - gt.mean(0))
    se = terms.std(0) / math.sqrt(n)
    assert ((est - exact).abs() < 5 * se + 1e-4).all()
    assert exact.abs().max() > 10 * se.max()  # the check is not vacuous


def test_quadrature_objective_matches_monte_carlo():
    x = _mixture_samples(THETA, 200000, torch.Generator().manual_seed(2))
    r = reward(x)
    assert abs(exact_objective(THETA, C).item() - r.mean().item()) < 5 * r.std().item() / math.sqrt(
        len(r))


def test_single_loop_increases_the_exact_objective():
    run = single_loop(THETA, steps=300, particles=500, generator=torch.Generator().manual_seed(0))
    assert exact_objective(run.thetas[-1], C) > 1.5 * exact_objective(THETA, C)
