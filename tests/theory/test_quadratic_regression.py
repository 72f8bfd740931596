"""Second-order regression model (row 65): derivatives against autograd, the NTK/Hessian
identity at a zero of the residual, and linear GD against its closed form."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.theory.quadratic_regression import gd_trajectory, random_quadratic_model


def _model(q=1.5, d=5, p=7, seed=0):
    return random_quadratic_model(d, p, q, generator=torch.Generator().manual_seed(seed))


def test_gradient_and_hessian_match_autograd():
    m = _model()
    theta = torch.randn(7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    f = lambda t: 0.5 * (m.z0 + m.J @ t + 0.5 * torch.einsum("apq,p,q->a", m.Q, t, t)).pow(2).mean()  # noqa: E731
    g_ref = torch.autograd.functional.jacobian(f, theta)
    h_ref = torch.autograd.functional.hessian(f, theta)
    assert torch.allclose(m.gradient(theta), g_ref, atol=1e-12)
    assert torch.allclose(m.hessian(theta), h_ref, atol=1e-12)
    assert abs(m.loss(theta) - f(theta).item()) < 1e-12


def test_ntk_equals_hessian_top_at_zero_residual():
    m = _model()
    theta = torch.randn(7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    z = m.residual(theta)
    at_zero = type(m)(m.J, m.Q, m.z0 - z)  # same J, Q; residual vanishes at theta
    assert at_zero.residual(theta).abs().max() < 1e-12
    assert abs(at_zero.ntk_top(theta) - at_zero.hessian_top(theta)) < 1e-10


def test_linear_model_gd_closed_form():
    m = _model(q=0.0)
    lr, steps = 0.7, 25
    tr = gd_trajectory(m, lr, steps, every=5)
    k = m.J @ m.J.T / len(m.z0)
    z = torch.linalg.matrix_power(torch.eye(5, dtype=torch.float64) - lr * k, steps) @ m.z0
    assert tr.steps.tolist() == [0, 5, 10, 15, 20, 25]
    assert abs(tr.loss[-1] - 0.5 * float(z @ z) / 5) < 1e-12
    assert abs(tr.ntk.max() - tr.ntk.min()) < 1e-12 and not tr.diverged


def test_divergence_is_flagged_and_bad_input_rejected():
    m = _model(q=0.0)
    lam = m.ntk_top(torch.zeros(7, dtype=torch.float64))
    assert gd_trajectory(m, 3.0 / lam, 200).diverged
    with pytest.raises(ConfigError, match="q_scale"):
        random_quadratic_model(3, 3, -1.0)
    with pytest.raises(ConfigError, match="lr"):
        gd_trajectory(m, 0.0, 3)
