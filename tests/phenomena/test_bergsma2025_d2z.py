"""D2Z vs 10x cosine (row 14): the batched training equals one plain AdamW loop per run, and
the trend check against hand-made gains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import ScheduleLR, build_optimizer, build_schedule
from trainlab.phenomena.bergsma2025_d2z import StraightToZero


def _plain_loss(phen, schedule, lr, steps, seed):
    """One run written out as an ordinary training loop (the reference)."""
    x_test, y_test, xs, ys = phen._seed_data(seed, steps)
    model = build_model("mlp", (20,), 1, depth=2, width=phen.WIDTH)
    init_apply(model, "kaiming-normal", generator=torch.Generator().manual_seed(seed + 7))
    opt = build_optimizer("adamw", model.parameters(), lr=lr, weight_decay=0.1)
    hyper = {"warmup": steps // 20} | ({"floor": 0.1} if schedule == "cosine" else {})
    sched = ScheduleLR(opt, build_schedule(schedule, steps, **hyper))
    for x, y in zip(xs, ys, strict=True):
        opt.zero_grad()
        (model(x) - y).pow(2).mean().backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        return (model(x_test) - y_test).pow(2).mean().item()


def test_batched_runs_equal_plain_loops():
    phen = StraightToZero()
    lrs = (1e-2, 1e-1)
    got = phen.final_losses(40, [0, 5], lrs)
    for i, seed in enumerate((0, 5)):
        for sch in ("d2z", "cosine"):
            for j, lr in enumerate(lrs):
                assert got[sch][i, j] == pytest.approx(_plain_loss(phen, sch, lr, 40, seed),
                                                       rel=1e-5)


def _data(gain_by_length, lengths=(250, 1000, 4000), best=1):
    """Losses whose best lr is grid point ``best`` and whose gain is the given array."""
    gain = np.asarray(gain_by_length, dtype=float)  # (seed, length)
    cos = np.full(gain.shape + (4,), 2.0)
    cos[..., best] = 1.0
    d2z = np.full_like(cos, 2.0)
    d2z[..., best] = 1.0 - gain
    return {"lrs": [3e-3, 1e-2, 3e-2, 1e-1], "lengths": list(lengths),
            "seeds": list(range(gain.shape[0])), "d2z": d2z, "cosine": cos}


def test_check_passes_a_growing_gain_and_fails_a_flat_one():
    phen = StraightToZero()
    growing = _data([[-0.01, 0.0, 0.012], [-0.008, 0.003, 0.015], [-0.012, 0.001, 0.01]])
    checks = phen.check(growing)
    assert [c.passed for c in checks] == [True, True, True]
    assert checks[1].measured == pytest.approx((0.012 + 0.015 + 0.01) / 3)
    flat = _data([[0.004, -0.003, 0.001], [-0.002, 0.004, -0.001], [0.003, 0.0, 0.002]])
    assert [c.passed for c in phen.check(flat)] == [False, False, True]
    edge = _data([[-0.01, 0.0, 0.012]] * 3, best=3)  # best lr at the top of the grid
    assert not phen.check(edge)[2].passed
