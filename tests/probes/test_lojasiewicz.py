"""Łojasiewicz constants on a quadratic, where the PL constant is known: for
L(w) = (w - w*)^T A (w - w*) / 2, ||grad L||^2 >= 2 mu (L - L*) with mu = lambda_min(A), an
equality along the slowest eigenvector (which gradient descent aligns with)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from trainlab.analyses import ANALYSES
from trainlab.analyses.lojasiewicz import (
    fit_lgi,
    gap_bound,
    length_bound,
    lgi_constants,
    linear_generalization_bound,
)
from trainlab.errors import ConfigError
from trainlab.probes import ProbeContext
from trainlab.probes.lojasiewicz import Lojasiewicz

EIGS = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)


class Quadratic(nn.Module):
    """Parameters w; ``forward`` ignores its input; the loss is (w-w*)^T A (w-w*) / 2."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
        self.register_buffer("a", q @ torch.diag(EIGS) @ q.T)
        self.register_buffer("w_star", torch.randn(3, generator=g, dtype=torch.float64))
        self.w = nn.Parameter(self.w_star + torch.randn(3, generator=g, dtype=torch.float64))

    def forward(self, x):
        d = self.w - self.w_star
        return (0.5 * d @ self.a @ d).expand(len(x))


def quad_loss(out, _y):
    return out.mean()


def gd_trajectory(steps: int = 300, lr: float = 0.1):
    """Runs GD, calling the probe as the monitor does (after backward, before the update)."""
    model = Quadratic()
    x = torch.zeros(4, 1, dtype=torch.float64)
    probe = Lojasiewicz()
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gaps, norms, outs, path = [], [], [], 0.0
    for step in range(steps):
        opt.zero_grad()
        loss = quad_loss(model(x), None)
        loss.backward()
        gaps.append(loss.item())
        norms.append(model.w.grad.norm().item())
        ctx = ProbeContext(step=step, model=model, loss_fn=quad_loss, batch=(x, None),
                           loss=loss.detach(), lr=lr, init_params=init)
        outs.append({k: float(v) for k, v in probe.measure(ctx).items()})
        path += lr * model.w.grad.norm().item()
        opt.step()
    return torch.tensor(gaps, dtype=torch.float64), torch.tensor(norms, dtype=torch.float64), \
        outs, path, probe


def test_pl_constant_of_a_quadratic_is_sqrt_two_mu():
    gaps, norms, outs, _, _ = gd_trajectory()
    c_pl = math.sqrt(2 * EIGS.min().item())
    # the inequality holds at every iterate with the true constant...
    assert bool((norms >= c_pl * gaps.sqrt() * (1 - 1e-12)).all())
    # ...and the estimate converges to it as GD aligns with the slowest direction
    assert outs[-1]["lgi/c_pl"] == pytest.approx(c_pl, rel=1e-6)
    assert outs[-1]["lgi/ratio"] == pytest.approx(c_pl, rel=1e-6)
    assert all(a["lgi/c_pl"] >= b["lgi/c_pl"] for a, b in zip(outs, outs[1:]))  # running min
    est = lgi_constants(gaps, norms)
    assert est[0].item() == pytest.approx(outs[-1]["lgi/c_pl"], rel=1e-12)


def test_length_bound_caps_the_distance_travelled():
    gaps, norms, outs, path, _ = gd_trajectory(lr=0.01, steps=2000)
    fit = fit_lgi(gaps, norms)
    last = outs[-1]
    assert last["lgi/distance"] <= path <= fit.length_bound
    assert last["lgi/length_bound"] == pytest.approx(fit.length_bound, rel=1e-9)
    # the PL rate (theta = 1/2) bounds the loss along the (near-)flow: t = 0.01 * steps
    c = lgi_constants(gaps, norms, (0.5,)).item()
    for t in (100, 500, 1999):
        assert gaps[t].item() <= gap_bound(gaps[0].item(), c, 0.5, 0.01 * t) * (1 + 1e-6)


def test_constants_of_an_exact_power_law():
    gaps = torch.logspace(0, -6, 50, dtype=torch.float64)
    norms = 2.0 * gaps ** 0.75
    cs = lgi_constants(gaps, norms, (0.5, 0.75, 0.9))
    assert cs[1].item() == pytest.approx(2.0, rel=1e-12)
    assert cs[0].item() == pytest.approx(2.0 * 1e-6 ** 0.25, rel=1e-9)  # worst at the bottom
    assert cs[2].item() == pytest.approx(2.0, rel=1e-12)  # worst at the top (gap 1)
    assert length_bound(1.0, 2.0, 0.75) == pytest.approx(1 / (2.0 * 0.25))
    # theta > 1/2: algebraic rate, checked against the ODE d gap/dt = -c^2 gap^(2 theta)
    gap, dt = 1.0, 1e-4
    for _ in range(20000):
        gap -= dt * 4.0 * gap ** 1.5
    assert gap == pytest.approx(gap_bound(1.0, 2.0, 0.75, 2.0), rel=1e-3)


def test_checkpoint_round_trip_and_errors():
    *_, probe = gd_trajectory(steps=5)
    fresh = Lojasiewicz()
    fresh.load_state_dict(probe.state_dict())
    assert fresh.state_dict() == probe.state_dict()
    with pytest.raises(ConfigError):
        lgi_constants(torch.ones(3), torch.ones(2))
    with pytest.raises(ConfigError):
        lgi_constants(torch.ones(3), torch.ones(3), (1.0,))


def test_linear_generalization_bound_closed_form_and_rademacher_term():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    radius = 0.7
    got = linear_generalization_bound(radius, x, lipschitz=2.0, loss_max=1.5, delta=0.1)
    complexity = radius / 10 * float(x.pow(2).sum().sqrt())
    assert got == pytest.approx(4.0 * complexity + 4.5 * math.sqrt(math.log(20) / 20))
    # the complexity term bounds the exact empirical Rademacher complexity of the ball,
    # (R/n) E_sigma ||sum_i sigma_i x_i||, enumerated over all 2^10 sign patterns
    signs = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=10)), dtype=torch.float64)
    exact = radius / 10 * float((signs @ x).norm(dim=1).mean())
    assert 0.7 * complexity < exact <= complexity
    assert ANALYSES.get("lojasiewicz-linear-bound") is linear_generalization_bound


def test_gradient_descent_stays_in_the_lgi_ball_of_the_bound():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)  # interpolable: L* = 0
    w0 = torch.zeros(3, dtype=torch.float64)
    w, gaps, norms = w0.clone(), [], []
    for _ in range(400):
        r = x @ w - y
        gaps.append(0.5 * float((r * r).mean()))
        g = x.T @ r / len(x)
        norms.append(float(g.norm()))
        w = w - 0.05 * g
    fit = fit_lgi(torch.tensor(gaps, dtype=torch.float64),
                  torch.tensor(norms, dtype=torch.float64))
    assert float((w - w0).norm()) <= fit.length_bound
    bound = linear_generalization_bound(fit.length_bound, x, lipschitz=1.0, loss_max=1.0)
    assert math.isfinite(bound) and bound > 0
