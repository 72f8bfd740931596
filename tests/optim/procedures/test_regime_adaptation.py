"""Regime adaptation: same number of updates at the same schedule points, sqrt lr scaling."""

from __future__ import annotations

import math

import pytest

from trainlab.errors import ConfigError
from trainlab.optim.procedures.regime_adaptation import adapt_regime


def test_same_updates_and_stretched_milestones():
    n, bs, bl = 50_000, 128, 4096
    r = adapt_regime(epochs=90, lr=0.1, small_batch=bs, large_batch=bl, dataset_size=n,
                     milestones=(30, 60, 80))
    assert r.updates == pytest.approx(90 * n / bs)
    assert r.epochs == pytest.approx(90 * 32)
    assert r.milestones == pytest.approx((960, 1920, 2560))
    # the updates at which lr drops are those of the small-batch run
    assert [m * n / bl for m in r.milestones] == pytest.approx([m * n / bs for m in (30, 60, 80)])
    assert r.lr == pytest.approx(0.1 * math.sqrt(32))
    assert adapt_regime(90, 0.1, bs, bl, n, lr_scaling="linear").lr == pytest.approx(3.2)
    assert adapt_regime(90, 0.1, bs, bl, n, lr_scaling="none").lr == 0.1


def test_validation():
    with pytest.raises(ConfigError, match="lr_scaling"):
        adapt_regime(10, 0.1, 32, 64, 100, lr_scaling="cubic")
    with pytest.raises(ConfigError, match="milestones"):
        adapt_regime(10, 0.1, 32, 64, 100, milestones=(20,))
    with pytest.raises(ConfigError, match="large_batch"):
        adapt_regime(10, 0.1, 32, 0, 100)
