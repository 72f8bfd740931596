"""ResNet stays a neural ODE (row 79): the neighbour difference and the log-log slope on
closed forms, the 1/L residual forward against an explicit Euler loop, and 2 worker
processes giving exactly the serial runs."""

from __future__ import annotations

import math

import numpy as np
import torch

from trainlab.phenomena._base import map_runs
from trainlab.phenomena.marion2024_resnet_ode import (
    ResNetStaysODE,
    _ODEResNet,
    depth_run,
    loglog_slope,
    max_neighbour_difference,
)


def test_max_neighbour_difference_of_a_sampled_cosine():
    depth = 50
    s = torch.arange(depth, dtype=torch.float64) / depth
    w = torch.cos(2 * math.pi * s)[:, None, None] * torch.ones(1, 2, 2, dtype=torch.float64)
    steps = (torch.cos(2 * math.pi * s[1:]) - torch.cos(2 * math.pi * s[:-1])).abs().max()
    assert abs(max_neighbour_difference(w) - 2 * steps.item()) < 1e-12  # ||ones(2,2)||_F = 2
    assert max_neighbour_difference(torch.ones(1, 3, 3)) == 0.0


def test_loglog_slope_of_a_power_law():
    depths = np.array([16, 64, 256, 1024.0])
    slope, ci = loglog_slope(depths, 3.0 / depths)
    assert abs(slope + 1) < 1e-12 and ci < 1e-9
    slope, ci = loglog_slope(depths, depths ** -0.5 * np.array([1.0, 1.2, 0.9, 1.1]))
    assert abs(slope + 0.5) < 0.1 and ci > 0.01


def test_forward_is_the_euler_scheme():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 3, 4, generator=g, dtype=torch.float64)
    v = torch.randn(5, 4, 3, generator=g, dtype=torch.float64)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64)
    expected = []
    for row in x:
        h = row.clone()
        for k in range(5):
            h = h + 0.2 * torch.nn.functional.gelu(h @ w[k]) @ v[k]
        expected.append(h)
    torch.testing.assert_close(_ODEResNet(w, v)(x), torch.stack(expected), rtol=0, atol=1e-12)


def test_check_on_hand_made_runs():
    depths, seeds = [16, 64, 256], [0, 1, 2]
    runs = {}
    for sd in seeds:
        for d in depths:
            runs[f"ode@{d}@{sd}"] = {"max_diff": (1 + 0.01 * sd) / d, "loss_ratio": 0.5}
            runs[f"iid@{d}@{sd}"] = {"max_diff": 2.0, "loss_ratio": 0.5}
    data = {"depths": depths, "seeds": seeds, "runs": runs}
    assert [c.passed for c in ResNetStaysODE().check(data)] == [True, True, True]
    for sd in seeds:  # smoothness lost: neighbour differences no longer shrink with depth
        for d in depths:
            runs[f"ode@{d}@{sd}"]["max_diff"] = 0.3 * d ** -0.3
    assert not ResNetStaysODE().check(data)[0].passed


def test_parallel_runs_are_bit_identical_to_serial():
    # full mode's worker processes: each (seed, depth, init) run redraws its seed's data and
    # W, so 2 processes give the serial numbers exactly
    jobs = {"ode@4@0": (0, 4, "ode"), "iid@8@1": (1, 8, "iid"), "ode@8@0": (0, 8, "ode")}
    serial = map_runs(depth_run, jobs, processes=1)
    assert map_runs(depth_run, jobs, processes=2) == serial
    assert list(serial) == list(jobs)
    assert serial["ode@4@0"] != serial["ode@8@0"] != serial["iid@8@1"]
