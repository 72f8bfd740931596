"""SmoothGrad against closed forms; the training Jacobian of GD on a quadratic against
(I - lr H)^T and a finite-difference check on a nonlinear net."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from _probe_helpers import assert_unchanged, batch, mlp, snapshot
from torch import nn

from trainlab.analyses.smoothgrad import smoothgrad
from trainlab.analyses.training_jacobian import training_jacobian


class SinScore(nn.Module):
    """Two class scores: sum(sin x) and -sum(sin x)."""

    def forward(self, x):
        s = torch.sin(x).sum(1, keepdim=True)
        return torch.cat([s, -s], dim=1)


def test_smoothgrad_linear_model_is_exact_and_restores_model():
    model = nn.Linear(6, 3).double()
    x = torch.randn(4, 6, dtype=torch.float64)
    model.train()
    snap = snapshot(model)
    target = torch.tensor([0, 2, 1, 2])
    m = smoothgrad(model, x, target, generator=torch.Generator().manual_seed(0))
    assert_unchanged(model, snap)
    torch.testing.assert_close(m, model.weight.detach()[target])


def test_smoothgrad_expectation_of_sine_score():
    """E[cos(x + eps)] = cos(x) exp(-sigma^2 / 2) for eps ~ N(0, sigma^2)."""
    x = torch.linspace(-2, 2, 5, dtype=torch.float64).reshape(1, 5)
    m = smoothgrad(SinScore(), x, torch.tensor([0]), samples=4000, noise_level=0.2,
                   generator=torch.Generator().manual_seed(0))
    sigma = 0.2 * 4.0
    ref = torch.cos(x) * math.exp(-sigma ** 2 / 2)
    assert (m - ref).abs().max() < 5 * sigma / math.sqrt(4000)


def test_training_jacobian_of_quadratic_is_matrix_power():
    torch.manual_seed(0)
    x = torch.randn(20, 4, dtype=torch.float64)
    y = torch.randn(20, 1, dtype=torch.float64)
    model = nn.Linear(4, 1, bias=False).double()
    snap = snapshot(model)
    lr, steps = 0.3, 5
    res = training_jacobian(model, lambda o, t: 0.5 * (o - t).pow(2).sum(-1).mean(), x, y,
                            lr=lr, steps=steps)
    assert_unchanged(model, snap)
    h = x.T @ x / 20
    ref = torch.linalg.matrix_power(torch.eye(4, dtype=torch.float64) - lr * h, steps)
    torch.testing.assert_close(res.jacobian, ref)
    assert res.chaotic + res.bulk + res.stable == 4


def test_training_jacobian_matches_finite_differences():
    model = mlp(sizes=(5, 4, 3))
    x, y = batch()
    res = training_jacobian(model, F.cross_entropy, x, y, lr=0.5, steps=3)
    theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    eps = 1e-6
    for j in (0, 7, 20):
        cols = []
        for sign in (1, -1):
            m = mlp(sizes=(5, 4, 3))
            with torch.no_grad():
                start = theta0.clone()
                start[j] += sign * eps
                torch.nn.utils.vector_to_parameters(start, m.parameters())
            for _ in range(3):
                m.zero_grad()
                F.cross_entropy(m(x), y).backward()
                with torch.no_grad():
                    for p in m.parameters():
                        p -= 0.5 * p.grad
            cols.append(torch.cat([p.detach().reshape(-1) for p in m.parameters()]))
        torch.testing.assert_close(res.jacobian[:, j], (cols[0] - cols[1]) / (2 * eps),
                                   rtol=1e-5, atol=1e-7)
