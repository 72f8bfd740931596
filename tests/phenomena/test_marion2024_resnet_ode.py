"""ResNet stays a neural ODE (row 79): roughness on closed-form weight sequences, the smooth
sampler's 1/L scaling, and the 1/L residual forward against an explicit Euler loop."""

from __future__ import annotations

import math

import torch

from trainlab.phenomena.marion2024_resnet_ode import (
    _ScaledResNet,
    depth_roughness,
    smooth_weights,
)


def test_roughness_of_a_sampled_cosine_is_its_max_step():
    depth = 50
    s = torch.arange(depth, dtype=torch.float64) / depth
    w = torch.cos(2 * math.pi * s)[:, None, None] * torch.ones(1, 2, 2, dtype=torch.float64)
    steps = (torch.cos(2 * math.pi * s[1:]) - torch.cos(2 * math.pi * s[:-1])).abs().max()
    assert abs(depth_roughness(w) - steps.item()) < 1e-12  # max ||W_k|| = ||1||_F * 1 / same
    iid = torch.randn(200, 4, 4, generator=torch.Generator().manual_seed(0))
    assert depth_roughness(iid) > 1.0  # independent neighbours: about sqrt(2) x typical norm


def test_smooth_weights_roughness_scales_as_one_over_depth():
    r = [depth_roughness(smooth_weights(depth, 6, generator=torch.Generator().manual_seed(3)))
         for depth in (100, 400)]
    assert 0.2 < r[1] / r[0] < 0.3  # same function (same draw), grid 4x finer


def test_forward_is_the_euler_scheme():
    g = torch.Generator().manual_seed(1)
    w, v = (torch.randn(5, 3, 3, generator=g, dtype=torch.float64) for _ in range(2))
    readout = torch.randn(3, 1, generator=g, dtype=torch.float64)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64)
    expected = []
    for row in x:
        h = row.clone()
        for k in range(5):
            h = h + 0.2 * v[k] @ torch.tanh(w[k] @ h)
        expected.append(h @ readout)
    got = _ScaledResNet(w, v, readout)(x)
    torch.testing.assert_close(got, torch.stack(expected), rtol=0, atol=1e-12)
