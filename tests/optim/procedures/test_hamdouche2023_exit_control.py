"""Exit-time control by policy gradient (papers.md row 90) on a toy with a known answer: the
simulator against a Crank-Nicolson solution of the value PDE, the martingale case (zero drift
gives exactly x0), the score-function gradient's sign, and actor-critic moving towards the
optimal bang control a = +1."""

import math

import numpy as np
import torch
from scipy.linalg import solve_banded
from torch import nn

from trainlab.optim.procedures import PROCEDURES
from trainlab.optim.procedures.hamdouche2023_exit_control import (
    ExitProblem,
    actor_critic,
    policy_gradient_loss,
    rollout,
    value_estimate,
)

D = torch.float64


def _pde_value(drift, sigma=0.5, x0=0.5, nx=400, nt=1000):
    # V_t + drift V_x + sigma^2/2 V_xx = 0 on (0, 1), V = x on the walls and at T = 1
    x = np.linspace(0, 1, nx + 2)
    h, k = x[1] - x[0], 1.0 / nt
    v = x.copy()
    lo = sigma**2 / (2 * h * h) - drift / (2 * h)
    di = -(sigma**2) / (h * h)
    up = sigma**2 / (2 * h * h) + drift / (2 * h)
    ab = np.zeros((3, nx))
    ab[0, 1:], ab[1], ab[2, :-1] = -0.5 * k * up, 1 - 0.5 * k * di, -0.5 * k * lo
    for _ in range(nt):
        inner = v[1:-1]
        rhs = inner + 0.5 * k * (lo * v[:-2] + di * inner + up * v[2:])
        rhs[-1] += 0.5 * k * up * 1.0  # implicit half of the wall value V(t, 1) = 1
        v = np.concatenate([[0.0], solve_banded((1, 1), ab, rhs), [1.0]])
    return float(np.interp(x0, x, v))


def test_zero_drift_is_a_martingale_and_full_drift_matches_the_pde():
    p, g = ExitProblem(), torch.Generator().manual_seed(0)
    m0, se0 = value_estimate(p, lambda t, x: torch.zeros_like(x), paths=20000, generator=g)
    assert abs(m0 - 0.5) < 3 * se0
    m1, se1 = value_estimate(p, lambda t, x: torch.ones_like(x), paths=20000, generator=g)
    ref = _pde_value(1.0)
    assert 0.95 < ref < 0.97
    assert abs(m1 - ref) < 3 * se1 + 5e-3  # + bias of checking exits on the grid only


def test_score_function_gradient_points_to_more_drift():
    p, g = ExitProblem(dt=0.02), torch.Generator().manual_seed(1)
    m = torch.zeros((), dtype=D, requires_grad=True)
    grads = []
    for _ in range(10):
        roll = rollout(p, lambda t, x: m.expand_as(x), std=0.5, paths=2000, generator=g)
        (gm,) = torch.autograd.grad(-policy_gradient_loss(roll), m)
        grads.append(float(gm))
    mean, se = np.mean(grads), np.std(grads, ddof=1) / math.sqrt(len(grads))
    assert mean > 3 * se  # dJ/dm > 0: V is increasing in x


class _Net(nn.Module):
    def __init__(self, squash, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.l1, self.l2 = nn.Linear(2, 16).double(), nn.Linear(16, 1).double()
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=D))
            if squash:
                self.l2.weight.zero_()
                self.l2.bias.zero_()
        self.squash = squash

    def forward(self, t, x):
        z = self.l2(torch.tanh(self.l1(torch.stack([t, x], -1)))).squeeze(-1)
        return torch.tanh(z) if self.squash else z


def test_actor_critic_moves_towards_the_optimal_control():
    p, g = ExitProblem(dt=0.02), torch.Generator().manual_seed(2)
    actor, critic = _Net(True, 0), _Net(False, 1)
    hist = actor_critic(p, actor, critic, iterations=8, paths=256, std=0.5, lr_actor=3e-2,
                        lr_critic=3e-2, generator=g)
    assert len(hist) == 8
    with torch.no_grad():
        assert float(actor(torch.zeros(1, dtype=D), torch.full((1,), 0.5, dtype=D))) > 0.5
    value, se = value_estimate(p, lambda t, x: actor(t, x), paths=4000, generator=g)
    assert value > 0.85 > 0.5 + 3 * se  # zero drift gives 0.5; the optimum is ~0.96
    assert PROCEDURES.entry("exit-time-actor-critic").papers == (90,)
