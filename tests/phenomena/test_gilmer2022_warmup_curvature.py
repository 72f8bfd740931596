"""Warmup and curvature (row 10): the loss against a hand formula, and the check on
hand-made runs (divergence counts as instability; an overshoot above 1.25 fails)."""

from __future__ import annotations

import numpy as np
import torch

from trainlab.phenomena.gilmer2022_warmup_curvature import WarmupCurvature, _half_mse


def test_half_mse_by_hand():
    out = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    # example 1: (0, 2, 0) -> 4; example 2: (0, 0, 2) -> 4; 0.5 * mean = 2
    assert _half_mse(out, y).item() == 2.0


def _data(max_ratio):
    warm = {"loss": np.array([2.0, 1.9, 1.0, 0.1]), "sharpness": np.array([4.0, 1.0]),
            "eos_ratio": np.array([0.0, max_ratio, 1.0])}
    none = {"loss": np.array([2.0, 50.0, np.inf]), "sharpness": np.array([4.0]),
            "eos_ratio": np.array([4.0])}
    return {"lr": 2.0, "lambda0": 4.0, "none": none, "warm": warm}


def test_check_on_hand_made_runs():
    checks = WarmupCurvature().check(_data(1.2))
    assert all(c.passed for c in checks), [(c.name, c.measured) for c in checks]
    assert checks[0].measured == 4.0 and checks[1].measured == 25.0 and checks[3].measured == 1.0
    bad = WarmupCurvature().check(_data(1.4))
    assert [c.passed for c in bad] == [True, True, False, True, True, True]
    calm = _data(1.0)
    calm["none"]["loss"] = np.array([2.0, 3.0, 1.0])  # no spike above 2x, no divergence
    assert not WarmupCurvature().check(calm)[1].passed
