"""Natural gradient (exact, CG) and the thermodynamic OU solve against dense float64 algebra."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from trainlab.errors import ConfigError
from trainlab.optim import build_optimizer
from trainlab.optim.loss_closure import make_closure
from trainlab.optim.natural_gradient import conjugate_gradient
from trainlab.optim.thermodynamic_solve import ou_solve

from .._tiny_mlp import clone, flat_grads, flat_params, functional, mse


def _dense_ggn(model, x, y):
    """GGN of 0.5 * mean ||f(x) - y||^2: J^T J / N, with J from autograd's jacobian."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def outputs(flat):
        params = {n: c.view(s) for n, c, s in zip(names, torch.split(flat, sizes), shapes)}
        return functional_call(model, params, (x,)).reshape(-1)

    j = torch.autograd.functional.jacobian(outputs, flat_params(model))
    return j.T @ j / x.shape[0]


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_ngd_step_equals_closed_form(problem, solver):
    model, x, y = problem
    f, w = functional(model, x, y)
    g = torch.func.grad(f)(w)
    fisher = _dense_ggn(model, x, y)
    damping, lr = 1e-2, 0.5
    ref = w - lr * torch.linalg.solve(fisher + damping * torch.eye(w.numel(), dtype=w.dtype), g)
    opt = build_optimizer("natural-gradient", model.parameters(), lr=lr, damping=damping,
                          solver=solver, cg_iters=200, cg_tol=1e-14)
    opt.step(make_closure(model, mse, x, y))
    torch.testing.assert_close(flat_params(model), ref, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(flat_grads(model), g)


def _spd(n=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    evals = torch.linspace(0.5, 3.0, n, dtype=torch.float64)
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    return q @ torch.diag(evals) @ q.T, b


def test_conjugate_gradient_solves_spd_system():
    a, b = _spd()
    torch.testing.assert_close(conjugate_gradient(lambda v: a @ v, b, max_iter=6, tol=0),
                               torch.linalg.solve(a, b))


def test_noiseless_ou_solve_converges_exponentially():
    a, b = _spd()
    exact = torch.linalg.solve(a, b)
    errs = [(ou_solve(lambda v: a @ v, b, time=t, dt=0.01) - exact).norm() for t in (5, 10)]
    # rate lambda_min = 0.5: error shrinks by ~exp(-0.5 * 5) between t=5 and t=10
    assert errs[1] < 1e-2 * exact.norm()
    assert errs[1] / errs[0] == pytest.approx(torch.exp(torch.tensor(-2.5)).item(), rel=0.1)


def test_noisy_ou_solve_time_average_converges():
    a, b = _spd()
    exact = torch.linalg.solve(a, b)
    gen = torch.Generator().manual_seed(3)
    errs = []
    for t in (20.0, 320.0):
        e = [(ou_solve(lambda v: a @ v, b, time=t, dt=0.05, temperature=0.05, average=True,
                       generator=gen) - exact).norm() ** 2 for _ in range(4)]
        errs.append(torch.stack(e).mean())
    assert errs[1] < errs[0] / 4  # mean-square error ~ 1/t (ratio 16 in theory)
    assert errs[1].sqrt() < 0.05 * exact.norm()


def test_thermodynamic_ngd_approaches_exact_ngd(problem):
    model, x, y = problem
    exact_model = clone(model)
    build_optimizer("natural-gradient", exact_model.parameters(), lr=0.5, damping=1.0,
                    solver="exact").step(make_closure(exact_model, mse, x, y))
    build_optimizer("thermodynamic-ngd", model.parameters(), lr=0.5, damping=1.0, ou_time=30.0,
                    ou_dt=0.1).step(make_closure(model, mse, x, y))
    torch.testing.assert_close(flat_params(model), flat_params(exact_model), rtol=1e-6, atol=1e-8)


def test_ngd_requires_ggn_closure(problem):
    model, x, y = problem
    opt = build_optimizer("natural-gradient", model.parameters(), lr=0.1)
    closure = make_closure(model, mse, x, y)
    with pytest.raises(ConfigError, match="ggn_vp"):
        opt.step(lambda: closure())
    with pytest.raises(ConfigError, match="solver"):
        build_optimizer("natural-gradient", model.parameters(), lr=0.1, solver="lu")


def test_warm_started_ou_solve_is_the_matrix_moving_average_of_natural_gradients():
    """TNGD's read-out after time t from the previous estimate x0: the noiseless Euler process
    gives exactly M x0 + (I - M) A^-1 b with M = (I - dt A)^n, and M -> exp(-A t) as dt -> 0
    (the paper's continuous-time moving average of natural gradients)."""
    a, b = _spd()
    x0 = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64)
    eye = torch.eye(6, dtype=torch.float64)
    for dt in (0.05, 0.001):
        n = round(0.6 / dt)
        m = torch.linalg.matrix_power(eye - dt * a, n)
        ref = m @ x0 + (eye - m) @ torch.linalg.solve(a, b)
        torch.testing.assert_close(ou_solve(lambda v: a @ v, b, x0=x0, time=0.6, dt=dt), ref)
    cont = torch.linalg.matrix_exp(-0.6 * a)
    assert (m - cont).abs().max() < 2e-3


def test_thermodynamic_ngd_carries_the_moving_average_across_steps():
    gen = torch.Generator().manual_seed(5)
    model = torch.nn.Linear(3, 2, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(2, 3, generator=gen, dtype=torch.float64))
    x = torch.randn(16, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(16, 2, generator=gen, dtype=torch.float64)
    damping, lr, time, dt = 0.5, 0.3, 0.5, 0.05
    a = _dense_ggn(model, x, y) + damping * torch.eye(6, dtype=torch.float64)  # constant: linear
    eye = torch.eye(6, dtype=torch.float64)
    m = torch.linalg.matrix_power(eye - dt * a, round(time / dt))
    f, w = functional(model, x, y)
    nat = torch.zeros(6, dtype=torch.float64)
    opt = build_optimizer("thermodynamic-ngd", model.parameters(), lr=lr, damping=damping,
                          ou_time=time, ou_dt=dt)
    for _ in range(3):
        exact = torch.linalg.solve(a, torch.func.grad(f)(w))
        nat = m @ nat + (eye - m) @ exact
        w = w - lr * nat
        opt.step(make_closure(model, mse, x, y))
        torch.testing.assert_close(flat_params(model), w)
    assert (nat - exact).norm() > 0.05 * exact.norm()  # the average is not the exact NGD step
