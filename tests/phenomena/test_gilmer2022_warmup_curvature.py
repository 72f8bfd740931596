"""Warmup and curvature (row 10): the loss against a hand formula, and the check on
hand-made runs (divergence counts as instability; the warmup run must end where it tolerates
the rate, follow the threshold in the second half of the warmup, and train)."""

from __future__ import annotations

import numpy as np
import torch

from trainlab.phenomena.gilmer2022_warmup_curvature import WarmupCurvature, _half_mse


def test_half_mse_by_hand():
    out = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    # example 1: (0, 2, 0) -> 4; example 2: (0, 0, 2) -> 4; 0.5 * mean = 2
    assert _half_mse(out, y).item() == 2.0


def _seed(late_ratio, final_sharpness=1.0):
    # warmup of 40 steps; sharpness measured every 10 steps at 0, 10, 20, 30, 40, 50
    warm = {"loss": np.array([2.0, 1.9, 1.0, 0.1]),
            "sharpness_steps": np.array([0, 10, 20, 30, 40, 50]),
            "sharpness": np.array([4.0, 3.0, 2.0, 1.5, 1.0, final_sharpness]),
            "eos_ratio": np.array([0.0, 1.5, late_ratio, late_ratio, late_ratio, 1.0])}
    none = {"loss": np.array([2.0, 50.0, np.inf]), "sharpness_steps": np.array([0]),
            "sharpness": np.array([4.0]), "eos_ratio": np.array([4.0])}
    return {"lr": 2.0, "lambda0": 4.0, "warmup": 40, "none": none, "warm": warm}


def test_check_on_hand_made_runs():
    checks = WarmupCurvature().check({"seeds": [_seed(1.0), _seed(1.2)]})
    assert all(c.passed for c in checks), [(c.name, c.measured) for c in checks]
    assert checks[0].measured == 4.0 and checks[3].measured == 1.2
    bad = WarmupCurvature().check({"seeds": [_seed(1.0), _seed(1.4)]})  # worst seed decides
    assert [c.passed for c in bad] == [True, True, True, False, True, True]
    sharp_end = WarmupCurvature().check({"seeds": [_seed(1.0, final_sharpness=1.3)]})
    assert not sharp_end[2].passed  # 2.0 * 1.3 / 2 = 1.3 > 1.1: does not tolerate the rate
    calm = _seed(1.0)
    calm["none"]["loss"] = np.array([2.0, 3.0, 1.0])  # no spike above 2x, no divergence
    assert not WarmupCurvature().check({"seeds": [calm]})[1].passed
