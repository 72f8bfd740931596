"""saxe-depth (row 1): the learning-time measurement against the closed form of a one-layer
network, the slope statistic against scipy, and the check on hand-made learning times."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from trainlab.phenomena._trend import ols_slope
from trainlab.phenomena.saxe2014_deep_linear import SaxeDepth, steps_to_learn


def test_one_layer_learning_time_closed_form():
    # depth 1, W0 = I (orthogonal init of a square layer is orthogonal; use a 1 x 1 problem):
    # the residual shrinks by (1 - lr) per step, the loss by (1 - lr)^2.
    target = torch.tensor([[3.0]], dtype=torch.float64)
    lrs = [0.1, 0.2, 0.4]
    k, lr = steps_to_learn(target, 1, 1, "orthogonal", lrs, 500, torch.Generator().manual_seed(0))
    assert lr == 0.4
    assert k == math.ceil(math.log(1e-3) / (2 * math.log(0.6)))
    assert steps_to_learn(target, 1, 1, "orthogonal", [0.001], 5,
                          torch.Generator().manual_seed(0)) == (None, None)
    # a rate beyond 2 diverges and is frozen; the slower one still learns
    k2, lr2 = steps_to_learn(target, 1, 1, "orthogonal", [2.5, 0.2], 500,
                             torch.Generator().manual_seed(0))
    assert lr2 == 0.2 and k2 == math.ceil(math.log(1e-3) / (2 * math.log(0.8)))
    # diverged copies leave the batch: the rate reported is still the grid's, in grid order
    k3, lr3 = steps_to_learn(target, 1, 1, "orthogonal", [3.0, 2.5, 0.4, 0.2], 500,
                             torch.Generator().manual_seed(0))
    assert (k3, lr3) == (k, 0.4)
    assert steps_to_learn(target, 1, 1, "orthogonal", [3.0, 2.5], 500,
                          torch.Generator().manual_seed(0)) == (None, None)


def test_ols_slope_matches_scipy():
    x = np.log2([8, 8, 16, 16, 32, 32.0])
    y = np.array([4.1, 4.4, 5.0, 5.3, 5.2, 5.6])
    ref = stats.linregress(x, y)
    s = ols_slope(x, y)
    half = stats.t.ppf(0.975, 4) * ref.stderr
    assert abs(s.value - ref.slope) < 1e-12
    assert abs(s.high - (ref.slope + half)) < 1e-12 and abs(s.low - (ref.slope - half)) < 1e-12


def _data(orth_growth, gauss_growth):
    depths = [2, 4, 8, 16, 32]
    rng = np.random.default_rng(0)
    noise = 1 + 0.05 * rng.standard_normal((3, 5))
    orth = 10 * np.array(depths, float) ** orth_growth * noise
    gauss = 10 * np.array(depths, float) ** gauss_growth * noise
    return {"depths": depths, "fit_depths": [8, 16, 32], "cap": 1000,
            "orthogonal": orth, "gaussian": gauss}


def test_check_on_hand_made_times():
    assert all(c.passed for c in SaxeDepth().check(_data(0.05, 1.5)))
    grows = SaxeDepth().check(_data(1.0, 1.5))
    assert not grows[1].passed  # orthogonal growing like depth is not flat
    same = SaxeDepth().check(_data(0.05, 0.05))
    assert not same[2].passed  # no contrast between the inits
    censored = _data(0.05, 1.5)
    censored["gaussian"][:, -1] = np.nan  # never learned: counted at the cap
    assert all(c.passed for c in SaxeDepth().check(censored))
    shallow = _data(0.05, 1.5)
    shallow["gaussian"][0, 2] = np.nan  # capped at depth 8, below the mean log-depth
    checks = SaxeDepth().check(shallow)
    assert checks[3].measured == 1 and not checks[3].passed


def test_cap_above_mean_log_depth_bounds_the_slope_from_below():
    # the reason check (d) exists: counting a run at the cap lowers the OLS slope when the run
    # lies at a fit depth above the mean log-depth, and can raise it when below
    rng = np.random.default_rng(1)
    x = np.log2(np.repeat([[32.0, 64.0, 99.0]], 4, 0)).ravel()
    for _ in range(50):
        y = 8 + rng.uniform(0, 4, x.size) + x - 5
        cap = np.quantile(y, 0.5)
        above = (x > x.mean()) & (y > cap)
        y_cap = np.where(above, cap, y)
        assert ols_slope(x, y_cap).value <= ols_slope(x, y).value + 1e-12
    y = np.tile([12.0, 9.0, 9.0], 4)  # a high value at the shallowest depth, capped
    assert ols_slope(x, np.minimum(y, 10.0)).value > ols_slope(x, y).value


def test_regression_guard_orthogonal_times():
    """Guard against the full path's recorded numbers (seed 0, full mode, width 128): the
    orthogonal learning times at depths 2, 4, 8 were 5, 7, 10 steps (float64,
    deterministic)."""
    from trainlab.tasks import build_task

    phen = SaxeDepth()
    spectrum = np.linspace(2.0, 0.5, phen.OUT)
    info = build_task("teacher-linear", in_dim=phen.IN, out_dim=phen.OUT,
                      singular_values=tuple(spectrum), n_train=phen.IN, n_test=1,
                      data_seed=0).info
    target = info["U"][:, : phen.OUT] @ torch.diag(info["S"][: phen.OUT]) \
        @ info["V"][:, : phen.OUT].T
    g = torch.Generator().manual_seed(10_000)
    lrs = [2.0 ** (-k / 2) for k in range(21)]
    times = [steps_to_learn(target, d, phen.WIDTH, "orthogonal", lrs, 100, g)[0]
             for d in (2, 4, 8)]
    assert times == [5, 7, 10]
