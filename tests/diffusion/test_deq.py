"""Row 49 (DeqIR): the joint fixed point against the serial DDIM sampler."""

from __future__ import annotations

import pytest
import torch

from trainlab.diffusion import ring_mixture, signal_mixture, vp_schedule
from trainlab.diffusion.cao2024_deq_sampling import (
    anderson,
    chain_coefficients,
    chain_map,
    deq_ddim_sample,
    deq_noise_gradient,
    serial_chain,
)


@pytest.fixture(scope="module")
def setup():
    s = vp_schedule()
    mix = signal_mixture(16)
    x_T = torch.randn(8, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return s, mix.denoiser(s), x_T


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_fixed_point_is_the_serial_chain(setup, eta):
    s, eps, x_T = setup
    n = 25
    r = deq_ddim_sample(eps, s, x_T, num_steps=n, eta=eta, tol=1e-8,
                        generator=torch.Generator().manual_seed(3))
    noise = torch.randn((n, *x_T.shape), generator=torch.Generator().manual_seed(3),
                        dtype=torch.float64) if eta else None
    ref = serial_chain(eps, chain_coefficients(s, n, eta), x_T, noise)
    assert r.converged and torch.allclose(r.x, ref, atol=1e-8)


def test_picard_sweeps_fix_one_more_state_each(setup):
    s, eps, x_T = setup
    n = 12
    coef = chain_coefficients(s, n)
    ref = serial_chain(eps, coef, x_T)
    states = torch.zeros_like(ref)
    for k in range(1, n + 1):
        states = chain_map(eps, coef, x_T, states)
        assert torch.allclose(states[:k], ref[:k], atol=1e-12, rtol=0)
        if k < n - 1:
            assert not torch.allclose(states[-1], ref[-1], atol=1e-6)


def test_anderson_needs_fewer_sequential_evaluations_than_the_chain():
    s, mix = vp_schedule(), ring_mixture()
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r = deq_ddim_sample(mix.denoiser(s), s, x_T, num_steps=50, tol=1e-6)
    ref = serial_chain(mix.denoiser(s), chain_coefficients(s, 50), x_T)
    assert r.converged and r.iterations < 50
    assert (r.x[-1] - ref[-1]).abs().max() < 1e-4


def test_anderson_solves_a_linear_contraction():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20, 20, generator=g, dtype=torch.float64)
    a = 0.9 * a / torch.linalg.matrix_norm(a, 2)
    b = torch.randn(20, generator=g, dtype=torch.float64)
    r = anderson(lambda x: a @ x + b, torch.zeros(20, dtype=torch.float64), tol=1e-12)
    exact = torch.linalg.solve(torch.eye(20, dtype=torch.float64) - a, b)
    assert r.converged and torch.allclose(r.x, exact, atol=1e-10) and r.iterations < 40


def test_implicit_gradient_matches_autograd_through_the_serial_chain(setup):
    s, eps, x_T = setup
    n = 10
    target = torch.linspace(-1, 1, 16, dtype=torch.float64)
    r = deq_ddim_sample(eps, s, x_T, num_steps=n, tol=1e-9)
    grad_states = torch.zeros_like(r.x)
    grad_states[-1] = 2 * (r.x[-1] - target)
    ours = deq_noise_gradient(eps, s, x_T, r.x, grad_states, num_steps=n)
    xt = x_T.clone().requires_grad_(True)
    loss = (serial_chain(eps, chain_coefficients(s, n), xt)[-1] - target).pow(2).sum()
    (ref,) = torch.autograd.grad(loss, xt)
    assert torch.allclose(ours, ref, rtol=1e-7, atol=1e-9)
