"""L-BFGS (torch's, registered as "lbfgs") against scipy's L-BFGS-B on a quadratic and on
Rosenbrock: both reach the same minimizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from trainlab.errors import ConfigError
from trainlab.optim import build_optimizer


def _rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _run(fun, x0, steps=50, **hyper):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = build_optimizer("lbfgs", [x], lr=1.0, line_search_fn="strong_wolfe", **hyper)

    def closure():
        opt.zero_grad()
        loss = fun(x)
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return x.detach().numpy()


def test_quadratic_minimizer_matches_scipy_and_closed_form():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    x_star = torch.linalg.solve(a, b).numpy()
    ours = _run(lambda x: 0.5 * x @ a @ x - b @ x, np.zeros(6), steps=3, tolerance_grad=1e-12,
                tolerance_change=1e-15)
    an, bn = a.numpy(), b.numpy()
    ref = minimize(lambda x: 0.5 * x @ an @ x - bn @ x, np.zeros(6), jac=lambda x: an @ x - bn,
                   method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15}).x
    np.testing.assert_allclose(ours, x_star, atol=1e-8)
    np.testing.assert_allclose(ref, x_star, atol=1e-4)  # scipy stops on its ftol


def test_rosenbrock_minimizer_matches_scipy():
    x0 = [-1.2, 1.0]
    ours = _run(_rosenbrock, x0, steps=10, tolerance_grad=1e-12, tolerance_change=1e-15)
    ref = minimize(lambda z: _rosenbrock(z), np.array(x0), method="L-BFGS-B",
                   jac=lambda z: np.array([-2 * (1 - z[0]) - 400 * z[0] * (z[1] - z[0] ** 2),
                                           200 * (z[1] - z[0] ** 2)]),
                   options={"gtol": 1e-10, "ftol": 1e-15}).x
    np.testing.assert_allclose(ours, [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_several_param_groups_take_one_joint_step_and_reject_their_own_hypers():
    x = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([-2.0], dtype=torch.float64, requires_grad=True)
    with pytest.raises(ConfigError, match="'lr' must be the same in every group"):
        build_optimizer("lbfgs", [{"params": [x]}, {"params": [y], "lr": 0.5}], lr=1.0)
    opt = build_optimizer("lbfgs", [{"params": [x]}, {"params": [y]}], lr=1.0,
                          line_search_fn="strong_wolfe", tolerance_change=1e-15)

    def closure():
        opt.zero_grad()
        loss = (x - 1) ** 2 + 2 * (y + 1) ** 2
        loss.sum().backward()
        return loss.sum()

    for _ in range(5):
        opt.step(closure)
    torch.testing.assert_close(torch.cat([x, y]).detach(),
                               torch.tensor([1.0, -1.0], dtype=torch.float64))


def test_needs_closure_and_validates():
    x = torch.zeros(2, requires_grad=True)
    opt = build_optimizer("lbfgs", [x], lr=1.0)
    with pytest.raises(ConfigError, match="closure"):
        opt.step()
    with pytest.raises(ConfigError, match="line_search_fn"):
        build_optimizer("lbfgs", [x], lr=1.0, line_search_fn="armijo")
    with pytest.raises(ConfigError, match="history_size"):
        build_optimizer("lbfgs", [x], lr=1.0, history_size=0)
