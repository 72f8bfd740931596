"""Saxe et al. (2014) closed forms against independent numerical integration and against
gradient descent on a real decoupled deep linear network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from trainlab.errors import ConfigError
from trainlab.models import build_model
from trainlab.theory import (
    deep_learning_time,
    deep_mode_strength,
    learning_time,
    learning_time_vs_depth,
    mode_strength,
    mode_strength_discrete,
)


def _layer_flow(s, u0, depth, tau, t_eval):
    """Gradient flow on the per-layer scalars a_1..a_D of 0.5 (s - prod a)^2 (no balance
    assumed in the equations; balanced start)."""

    def rhs(_t, a):
        u = np.prod(a)
        return [(s - u) * u / ai / tau for ai in a]

    a0 = np.full(depth, u0 ** (1.0 / depth))
    sol = solve_ivp(rhs, (0, t_eval[-1]), a0, t_eval=t_eval, rtol=1e-11, atol=1e-14,
                    method="DOP853")
    return np.prod(sol.y, axis=0)


def test_sigmoid_matches_two_layer_flow():
    t = np.linspace(0, 6000, 301)
    for s, u0 in [(4.0, 1e-4), (1.0, 1e-3), (2.5, 0.3)]:
        ref = _layer_flow(s, u0, 2, 1000.0, t)
        np.testing.assert_allclose(mode_strength(t, s, u0, tau=1000.0), ref, rtol=1e-7,
                                   atol=1e-12)


def test_learning_time_inverts_the_sigmoid():
    for s, u0, uf in [(3.0, 1e-5, 1.5), (1.0, 0.2, 0.99), (2.0, 1.5, 1.9)]:
        t = learning_time(s, u0, uf, tau=7.0)
        assert mode_strength(t, s, u0, tau=7.0) == pytest.approx(uf, rel=1e-10)
    # small-u0 limit quoted in the paper: t ~ (tau/s) ln(s/eps) for u0 = eps, uf = s - eps
    s, eps = 2.0, 1e-6
    assert learning_time(s, eps, s - eps) == pytest.approx(math.log(s / eps) / s, rel=1e-5)


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8])
def test_deep_trajectory_matches_layerwise_flow(depth):
    t = np.linspace(0, 40, 81)
    ref = _layer_flow(1.5, 0.05, depth, 1.0, t)
    np.testing.assert_allclose(deep_mode_strength(t, 1.5, 0.05, depth), ref, rtol=1e-6)


@pytest.mark.parametrize("depth", [2, 4, 7])
def test_deep_learning_time_is_the_hitting_time(depth):
    s, u0, uf = 1.0, 0.01, 0.8
    t_hit = deep_learning_time(s, u0, uf, depth, tau=3.0)
    u = deep_mode_strength(np.array([0.0, t_hit]), s, u0, depth, tau=3.0)
    assert u[-1] == pytest.approx(uf, rel=1e-6)
    if depth == 2:
        assert t_hit == pytest.approx(learning_time(s, u0, uf, tau=3.0), rel=1e-9)


def test_discrete_map_is_gradient_descent_on_a_decoupled_network():
    """Build W_l = R_{l+1} diag(a) R_l^T in a real deep-linear model; GD on the task loss
    must follow mode_strength_discrete for every mode (float64, exact up to rounding)."""
    g = torch.Generator().manual_seed(0)
    n, depth, lr, steps = 6, 3, 0.05, 200
    s = np.array([3.0, 2.0, 1.0, 0.5, 0.0, 0.0])
    rot = [torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))[0]
           for _ in range(depth + 1)]
    teacher = rot[-1] @ torch.diag(torch.tensor(s)) @ rot[0].T
    model = build_model("deep-linear", (n,), n, depth=depth - 1, width=n).double()
    layers = [m for m in model if isinstance(m, torch.nn.Linear)]
    a0 = 1e-2 ** (1 / depth)
    with torch.no_grad():
        for i, layer in enumerate(layers):
            layer.weight.copy_(rot[i + 1] @ (a0 * torch.eye(n, dtype=torch.float64)) @ rot[i].T)
    x = torch.eye(n, dtype=torch.float64) * math.sqrt(n)  # whitened: mean x x^T = I
    y = x @ teacher.T
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (model(x) - y).pow(2).sum(1).mean()).backward()
        opt.step()
    w = model(torch.eye(n, dtype=torch.float64)).detach().T  # the end-to-end map
    u = torch.diagonal(rot[-1].T @ w @ rot[0]).numpy()
    for k in range(4):
        assert u[k] == pytest.approx(mode_strength_discrete(steps, s[k], 1e-2, lr, depth)[-1],
                                     rel=1e-9)


def test_discrete_map_approaches_gradient_flow_for_small_lr():
    s, u0, lr = 2.0, 1e-4, 1e-3
    steps = 6000
    disc = mode_strength_discrete(steps, s, u0, lr, depth=2)
    flow = mode_strength(np.arange(steps + 1), s, u0, tau=1 / lr)
    assert np.max(np.abs(disc - flow)) / s < 0.01


def test_depth_scaling_prediction():
    depths = [2, 4, 8, 16, 32, 64]
    ortho = learning_time_vs_depth(depths, 1.0, 0.5, 0.9)
    assert np.all(np.diff(ortho) > 0) and ortho[-1] < 1.5 * ortho[0]  # bounded in depth
    # the D -> infinity limit: integral of du / (u^2 (1 - u)) from 0.5 to 0.9
    limit = (1 / 0.5 - 1 / 0.9) + math.log(0.9 / 0.1) - math.log(0.5 / 0.5)
    assert ortho[-1] < limit and learning_time_vs_depth([4096], 1.0, 0.5, 0.9)[0] == \
        pytest.approx(limit, rel=1e-3)
    shrinking = learning_time_vs_depth(depths, 1.0, lambda d: 0.5**d, 0.9)
    assert np.all(shrinking[1:] / shrinking[:-1] > 2)


def test_bad_arguments_raise():
    with pytest.raises(ConfigError, match="u0"):
        mode_strength(1.0, 1.0, 1.5)
    with pytest.raises(ConfigError, match="uf"):
        learning_time(1.0, 0.1, 1.0)
    with pytest.raises(ConfigError, match="depth"):
        deep_learning_time(1.0, 0.1, 0.5, 0)
    with pytest.raises(ConfigError, match="non-decreasing"):
        deep_mode_strength([2.0, 1.0], 1.0, 0.1, 3)
