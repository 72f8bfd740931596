"""butterfly-effect (row 8): the normalized whole-network perturbation has exactly the stated
norm and per-tensor shape, and the check reads hand-made barriers as the claim says."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from trainlab.phenomena.altintas2025_butterfly import ButterflyEffect, normalized_perturbation


def test_perturbation_norm_and_scope():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    std = {"0.weight": 0.5, "2.weight": 0.1}
    noise = normalized_perturbation(net, std, 0.01, generator=torch.Generator().manual_seed(1))
    assert set(noise) == {"0.weight", "2.weight"}  # biases are left alone
    expected = math.sqrt(20 * 0.25 + 12 * 0.01)
    total = math.sqrt(sum(float(v.pow(2).sum()) for v in noise.values()))
    assert abs(total - 0.01 * expected) < 1e-9
    again = normalized_perturbation(net, std, 0.01, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(noise[k], again[k]) for k in noise)  # generator only


def test_check_on_hand_made_barriers():
    fading = {"times": [0, 2, 31, 155], "control_distance": 0.0,
              "barrier": np.array([[0.5, 0.6, 0.55], [0.4, 0.5, 0.45], [0.1, 0.12, 0.08],
                                   [0.01, 0.02, 0.015]])}
    assert all(c.passed for c in ButterflyEffect().check(fading))
    flat = dict(fading, barrier=0.3 + 0.01 * np.arange(12.0).reshape(4, 3))  # grows with t
    assert [c.passed for c in ButterflyEffect().check(flat)][:3] == [False, False, False]
    broken = dict(fading, control_distance=1e-3)
    assert not ButterflyEffect().check(broken)[3].passed
