"""Train longer (row 37): the convnet uses ghost batch norm when asked, the log-vs-sqrt fit
and the check's seed statistics against hand-made data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainlab.models.ghost_batchnorm import GhostBatchNorm
from trainlab.phenomena.hoffer2017_train_longer import ARMS, TrainLonger, fit_r2, shallow_convnet


def test_convnet_norm_layers_and_shape():
    g = torch.Generator().manual_seed(0)
    ghost = [m for m in shallow_convnet(32, g).modules() if isinstance(m, GhostBatchNorm)]
    assert len(ghost) == 3 and all(m.ghost_batch_size == 32 for m in ghost)
    plain = shallow_convnet(None, g)
    assert not any(isinstance(m, GhostBatchNorm) for m in plain.modules())
    assert plain(torch.randn(5, 40, generator=g)).shape == (5, 10)


def test_fit_r2_against_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = 2 * x + rng.normal(size=30)
    assert fit_r2(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, abs=1e-12)


def test_log_beats_sqrt():
    t = np.arange(1, 300)
    log_r2, sqrt_r2 = TrainLonger.log_beats_sqrt(list(3 * np.log(t) + 1))
    assert log_r2 == pytest.approx(1, abs=1e-12) and sqrt_r2 < log_r2
    log_r2, sqrt_r2 = TrainLonger.log_beats_sqrt(list(0.5 * np.sqrt(t)))
    assert sqrt_r2 == pytest.approx(1, abs=1e-12) and log_r2 < sqrt_r2


def _runs(accuracies, distance):
    return {"runs": [{a: {"accuracy": acc[i], "distance": distance} for i, a in enumerate(ARMS)}
                     for acc in accuracies], "seeds": list(range(len(accuracies)))}


def test_check_on_hand_made_tables():
    log = [math.log(t) for t in range(1, 100)]
    # SB, LB, +LR, +GBN, +RA per seed: a clear gap that RA closes
    ok = _runs([(0.96, 0.60, 0.75, 0.76, 0.965), (0.95, 0.62, 0.74, 0.77, 0.955),
                (0.955, 0.58, 0.73, 0.75, 0.95)], log)
    checks = TrainLonger().check(ok)
    assert all(c.passed for c in checks)
    assert checks[0].measured == pytest.approx(100 * (0.96 + 0.95 + 0.955 - 1.8) / 3)
    # RA stays 2 points below SB with a 0.5-point spread: the gap is not closed
    bad = _runs([(0.96, 0.60, 0.75, 0.76, 0.94), (0.95, 0.62, 0.74, 0.77, 0.93),
                 (0.955, 0.58, 0.73, 0.75, 0.93)], [math.sqrt(t) for t in range(1, 100)])
    assert [c.passed for c in TrainLonger().check(bad)[:3]] == [True, False, False]
    one = _runs([(0.96, 0.60, 0.75, 0.76, 0.965)], log)  # one seed cannot pass a comparison
    assert [c.passed for c in TrainLonger().check(one)[:2]] == [False, False]
