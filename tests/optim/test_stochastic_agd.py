"""Stochastic AGD (row 22) against the estimating-sequence equations written out, and the
reproduction: on an interpolating least-squares problem it needs fewer iterations than SGD."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim import build_optimizer
from trainlab.optim.stochastic_agd import next_alpha

from ._problems import assert_close_lists, grads_at, initial_params, run


@pytest.mark.parametrize("mu,gamma0", [(0.0, None), (0.3, None), (0.3, 2.0)])
def test_reference_equations(mu, gamma0):
    eta = 0.05
    x0 = initial_params()
    gamma = (mu if mu > 0 else 1 / eta) if gamma0 is None else gamma0
    v = [x.clone() for x in x0]
    w = [x.clone() for x in x0]
    for k in range(15):
        alpha = (-(eta * (gamma - mu)) + math.sqrt((eta * (gamma - mu)) ** 2
                                                   + 4 * eta * gamma)) / 2
        assert alpha**2 == pytest.approx(eta * ((1 - alpha) * gamma + alpha * mu))
        gamma_next = (1 - alpha) * gamma + alpha * mu
        y = [(alpha * gamma * vi + gamma_next * wi) / (gamma + alpha * mu) for vi, wi in zip(v, w)]
        g = grads_at(y, k)
        w = [yi - eta * gi for yi, gi in zip(y, g)]
        v = [((1 - alpha) * gamma * vi + alpha * mu * yi - alpha * gi) / gamma_next
             for vi, yi, gi in zip(v, y, g)]
        gamma = gamma_next
    params, opt = run(lambda p: build_optimizer("stochastic-agd", p, lr=eta, mu=mu,
                                                gamma0=gamma0), 15)
    assert_close_lists([opt.state[p]["w"] for p in params], w, rtol=1e-12, atol=1e-13)
    assert_close_lists([opt.state[p]["v"] for p in params], v, rtol=1e-12, atol=1e-13)


def test_constant_alpha_when_gamma0_is_mu():
    assert next_alpha(0.3, 0.05, 0.3) == pytest.approx(math.sqrt(0.05 * 0.3))


def test_gamma0_mu_is_nesterovs_constant_momentum_method_in_torch():
    """With gamma_0 = mu the estimating sequence has alpha = sqrt(eta mu) at every step and
    y_k is Nesterov's constant-step scheme, y_{k+1} = w_{k+1} + beta (w_{k+1} - w_k) with
    beta = (1 - alpha) / (1 + alpha) (Nesterov 2004, "Introductory Lectures", scheme 2.2.22),
    whose look-ahead points are the iterates of torch.optim.SGD(nesterov=True)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = a @ a.T / 6 + 0.1 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    x0 = torch.randn(6, generator=g, dtype=torch.float64)
    eta, mu = 1 / float(torch.linalg.eigvalsh(a)[-1]), 0.1

    def path(make):
        p = torch.nn.Parameter(x0.clone())
        opt, out = make([p]), []
        for _ in range(40):
            p.grad = a @ p.detach() - b
            opt.step()
            out.append(p.detach().clone())
        return torch.stack(out)

    alpha = math.sqrt(eta * mu)
    ours = path(lambda ps: build_optimizer("stochastic-agd", ps, lr=eta, mu=mu, gamma0=mu))
    ref = path(lambda ps: torch.optim.SGD(ps, lr=eta, momentum=(1 - alpha) / (1 + alpha),
                                          nesterov=True))
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-13)


def test_faster_than_sgd_on_interpolating_least_squares():
    g = torch.Generator().manual_seed(0)
    n, d = 200, 20
    a = torch.randn(n, d, generator=g, dtype=torch.float64) \
        * torch.logspace(0, -1, d, dtype=torch.float64)
    x_star = torch.randn(d, generator=g, dtype=torch.float64)
    b = a @ x_star  # interpolation: every f_i is minimized at x_star
    ev = torch.linalg.eigvalsh(a.T @ a / n)
    big_l, mu = float(ev[-1]), float(ev[0])
    l_max = float((a**2).sum(1).max())
    rho = l_max / mu  # strong growth constant of row sampling: rho <= L_max / mu
    order = torch.randint(0, n, (20_000,), generator=g).tolist()

    def iterations(name, **hyper):
        x = torch.zeros(d, dtype=torch.float64, requires_grad=True)
        opt = build_optimizer(name, [x], **hyper)
        for k, i in enumerate(order):
            x.grad = (a[i] @ x.detach() - b[i]) * a[i]
            opt.step()
            iterate = opt.state[x]["w"] if name == "stochastic-agd" else x.detach()
            if torch.linalg.vector_norm(iterate - x_star) < 1e-6:
                return k
        return len(order)

    agd = iterations("stochastic-agd", lr=1 / (rho * big_l), mu=mu)
    sgd = iterations("sgd", lr=1 / l_max)
    assert agd < 0.6 * sgd < 0.6 * len(order)


def test_validation():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ConfigError, match="mu"):
        build_optimizer("stochastic-agd", p, lr=0.1, mu=-1.0)
    with pytest.raises(ConfigError, match="gamma0"):
        build_optimizer("stochastic-agd", p, lr=0.1, gamma0=0.0)
