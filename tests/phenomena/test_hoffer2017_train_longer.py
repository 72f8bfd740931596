"""Train longer (row 37): the student uses ghost batch norm when asked, and the check's R^2
and accuracy gaps against hand-made data."""

from __future__ import annotations

import math

import torch

from trainlab.models.ghost_batchnorm import GhostBatchNorm
from trainlab.phenomena.hoffer2017_train_longer import TrainLonger, _bn_mlp


def test_student_norm_layers():
    g = torch.Generator().manual_seed(0)
    ghost = [m for m in _bn_mlp(32, g).modules() if isinstance(m, GhostBatchNorm)]
    assert len(ghost) == 2 and all(m.ghost_batch_size == 32 for m in ghost)
    assert not any(isinstance(m, GhostBatchNorm) for m in _bn_mlp(None, g).modules())


def test_check_thresholds():
    steps = [2 ** k for k in range(12)]
    exact_log = {"steps": steps, "distance": [3 * math.log(t) + 1 for t in steps]}
    data = {"small": {**exact_log, "accuracy": 0.90}, "adapted": {"accuracy": 0.895},
            "naive": {"accuracy": 0.85}}
    checks = TrainLonger().check(data)
    assert all(c.passed for c in checks) and abs(checks[0].measured - 1) < 1e-12
    data["small"]["distance"] = [float(t) for t in steps]  # linear in t, not in log t
    data["adapted"]["accuracy"] = 0.88
    data["naive"]["accuracy"] = 0.895
    assert [c.passed for c in TrainLonger().check(data)] == [False, False, False]
