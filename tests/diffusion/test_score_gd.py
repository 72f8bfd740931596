"""Row 85 (score estimation by GD): the NTK and kernel GD against autograd and iteration,
the exact conditional mean by the noisy-label decomposition, and early stopping."""

from __future__ import annotations

import math

import torch

from trainlab.diffusion.han2024_score_gd import (
    TwoLayerReLU,
    dsm_regression_data,
    empirical_ntk,
    kernel_gd,
    ring_atoms,
    train_score_gd,
)


def test_empirical_ntk_is_jacobian_gram():
    g = torch.Generator().manual_seed(0)
    net = TwoLayerReLU(4, 2, 64, generator=g)
    z = torch.randn(10, 4, generator=g, dtype=torch.float64)
    jac = torch.func.jacrev(lambda w: torch.func.functional_call(net, {"w": w}, (z,)))(
        net.w.detach()).reshape(20, -1)
    assert torch.allclose(empirical_ntk(net, z), jac @ jac.T, atol=1e-12)


def test_kernel_gd_closed_form_equals_iteration():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(12, 12, generator=g, dtype=torch.float64)
    k = a @ a.T / 12
    f0, y = (torch.randn(6, 2, generator=g, dtype=torch.float64) for _ in range(2))
    f = f0.clone()
    for _ in range(37):
        f = f - 0.5 / 6 * (k @ (f - y).reshape(-1)).reshape(f.shape)
    assert torch.allclose(kernel_gd(k, f0, y, 0.5, 37), f, atol=1e-12)


def test_label_noise_decomposition_holds_for_the_exact_conditional_mean():
    # E||x0 - f||^2 = E||E[x0|xt] - f||^2 + E||x0 - E[x0|xt]||^2 for any f of (xt, t).
    data = dsm_regression_data(ring_atoms(), 40000, generator=torch.Generator().manual_seed(2))
    f = 0.5 * torch.tanh(data.z[:, :2])
    diff = (data.labels - f).pow(2).sum(1) - (data.clean - f).pow(2).sum(1) \
        - (data.labels - data.clean).pow(2).sum(1)
    assert abs(diff.mean()) < 4 * diff.std() / math.sqrt(len(diff))
    assert (data.labels - data.clean).pow(2).sum(1).mean() > 0.05  # the labels are noisy


def test_gd_overfits_label_noise_and_early_stopping_helps():
    g = torch.Generator().manual_seed(0)
    train = dsm_regression_data(ring_atoms(), 64, generator=g)
    test = dsm_regression_data(ring_atoms(), 500, generator=g)
    net = TwoLayerReLU(4, 2, 256, generator=g)
    a0 = net.a.clone()
    c = train_score_gd(net, train, test, lr=1.0, steps=600, record_every=25)
    i = c.steps.index(c.stop)
    assert c.exact[-1] > 1.2 * c.exact[i] and c.train[-1] < c.train[i]
    assert torch.equal(net.a, a0)
