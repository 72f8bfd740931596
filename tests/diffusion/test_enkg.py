"""Row 106 (EnKG): the particle update against its closed form for affine models, the ensemble
Kalman analysis against a dense Kalman update, and derivative-free guidance to the exact
answer of a noiseless nonlinear 2-D problem with a numpy-only forward model."""

from __future__ import annotations

import math

import numpy as np
import torch

from trainlab.diffusion import ring_mixture
from trainlab.diffusion.zheng2024_enkg import (
    black_box,
    dps_sample,
    enkg_correction,
    enkg_sample,
    ensemble_kalman_analysis,
)


def _rand(*shape, g):
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def test_correction_is_preconditioned_gradient_for_affine_models():
    g = torch.Generator().manual_seed(0)
    for j in (3, 7, 50):
        x, h, b, y = _rand(j, 5, g=g), _rand(3, 5, g=g), _rand(3, g=g), _rand(3, g=g)
        ys = x @ h.T + b
        moved = enkg_correction(x, ys, y, scale=2.0)
        dx = x - x.mean(0)
        cxx = dx.T @ dx / j
        err = ys - y
        coef = err @ (ys - ys.mean(0)).T / j
        w = 2.0 / torch.linalg.matrix_norm(coef)
        assert torch.allclose(moved, x - w * err @ h @ cxx, atol=1e-12)


def test_kalman_analysis_is_the_dense_kalman_update_with_sample_covariance():
    g = torch.Generator().manual_seed(1)
    x, h, y = _rand(40, 4, g=g), _rand(2, 4, g=g), _rand(2, g=g)
    gamma = torch.diag(torch.tensor([0.3, 0.5], dtype=torch.float64))
    dx = x - x.mean(0)
    p = dx.T @ dx / 39
    k = p @ h.T @ torch.linalg.inv(h @ p @ h.T + gamma)
    dense = x + (y - x @ h.T) @ k.T
    assert torch.allclose(ensemble_kalman_analysis(x, x @ h.T, y, gamma), dense, atol=1e-12)


def test_perturbed_kalman_analysis_reaches_the_linear_gaussian_posterior():
    g = torch.Generator().manual_seed(2)
    d, m, j = 3, 2, 40000
    m0 = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    a = _rand(d, d, g=g)
    p0 = a @ a.T / d + 0.5 * torch.eye(d, dtype=torch.float64)
    h, gamma = _rand(m, d, g=g), 0.2 * torch.eye(m, dtype=torch.float64)
    y = torch.tensor([0.7, -0.3], dtype=torch.float64)
    x = m0 + _rand(j, d, g=g) @ torch.linalg.cholesky(p0).T
    eta = _rand(j, m, g=g) @ torch.linalg.cholesky(gamma).T
    post = ensemble_kalman_analysis(x, x @ h.T, y, gamma, eta)
    k = p0 @ h.T @ torch.linalg.inv(h @ p0 @ h.T + gamma)
    mean, cov = m0 + k @ (y - h @ m0), (torch.eye(d, dtype=torch.float64) - k @ h) @ p0
    se = torch.sqrt(torch.diagonal(cov) / j)
    assert ((post.mean(0) - mean).abs() < 5 * se + 1e-3).all()
    assert torch.allclose(torch.cov(post.T), cov, atol=5 * math.sqrt(2 / j) * cov.abs().max())


def test_enkg_recovers_the_exact_answer_of_a_nonlinear_black_box_problem():
    # prior: ring of 8 Gaussians; y = G(x*) with G(x) = (tanh x1 + x2, x2^3) invertible, so
    # the noiseless posterior is the point x* = (1.3, 1.5).
    mix = ring_mixture()
    forward = black_box(lambda x: np.stack([np.tanh(x[:, 0]) + x[:, 1], x[:, 1] ** 3], 1))
    x_star = torch.tensor([[1.3, 1.5]], dtype=torch.float64)
    y = forward(x_star)[0]
    x_init = 80 * torch.randn(128, 2, generator=torch.Generator().manual_seed(0),
                              dtype=torch.float64)
    out = enkg_sample(mix.edm_denoiser, forward, y, x_init, num_steps=30)
    assert ((out.x0 - x_star).norm(dim=1) < 0.3).double().mean() >= 0.7
    assert not out.uses_gradients
    unguided = enkg_sample(mix.edm_denoiser, forward, y, x_init, num_steps=30, num_updates=0)
    assert ((unguided.x0 - x_star).norm(dim=1) < 0.3).double().mean() < 0.2


def test_dps_moves_toward_the_observation_with_gradients():
    mix = ring_mixture()
    h = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([2.0], dtype=torch.float64)
    x_init = 80 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0),
                              dtype=torch.float64)
    guided = dps_sample(mix.edm_denoiser, lambda x: x @ h.T, y, x_init, num_steps=30,
                        step_size=0.3)
    free = dps_sample(mix.edm_denoiser, lambda x: x @ h.T, y, x_init, num_steps=30,
                      step_size=0.0)
    assert guided.uses_gradients
    assert (guided.x0[:, 0] - 2).abs().mean() < 0.5 * (free.x0[:, 0] - 2).abs().mean()
