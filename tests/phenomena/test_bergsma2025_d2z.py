"""D2Z vs 10x cosine (row 14): one run equals a plain torch AdamW loop with the schedules
written from their formulas, the tokens-per-parameter count, and the trend check against
hand-made gains."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainlab.phenomena import bergsma2025_d2z as d2z
from trainlab.phenomena.bergsma2025_d2z import StraightToZero


def _multiplier(schedule, step, steps):
    """Warmup over 10% of the steps, then linear to 0 (D2Z) or half-cosine to 0.1 (10x)."""
    w = round(0.1 * steps)
    if step < w:
        return step / w
    tau = min(step - w, steps - w) / (steps - w)
    return 1 - tau if schedule == "d2z" else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * tau))


def _reference(schedule, lr, steps, seed):
    """The run written out with torch.optim.AdamW and a LambdaLR from the formulas."""
    src = d2z.language()
    held = src.sample(d2z.N_HELD, d2z.CONTEXT + 1,
                      torch.Generator().manual_seed(d2z.SOURCE_SEED + 1))
    stream = src.sample(steps * d2z.BATCH, d2z.CONTEXT + 1,
                        torch.Generator().manual_seed(seed + 1))
    model = d2z.build_lm(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: _multiplier(schedule, t, steps))
    for batch in stream.view(steps, d2z.BATCH, -1):
        out = model(batch[:, :-1])
        loss = F.cross_entropy(out.reshape(-1, d2z.VOCAB), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    with torch.no_grad():
        out = model(held[:, :-1])
        return F.cross_entropy(out.reshape(-1, d2z.VOCAB), held[:, 1:].reshape(-1)).item()


@pytest.mark.parametrize("schedule", ["d2z", "cosine"])
def test_one_run_equals_a_plain_adamw_loop(schedule):
    got = d2z.train_run(schedule, 1e-2, 20, 3)
    assert got == pytest.approx(_reference(schedule, 1e-2, 20, 3), rel=1e-6)
    assert got < math.log(d2z.VOCAB)  # it learned something in 20 steps


def test_tokens_per_parameter():
    n = sum(p.numel() for p in d2z.build_lm(0).parameters())
    assert d2z.n_params() == n
    tokens_per_step = d2z.BATCH * d2z.CONTEXT
    assert d2z.steps_for(20) == round(20 * n / tokens_per_step)
    assert d2z.steps_for(200) * tokens_per_step / n == pytest.approx(200, rel=0.01)


def _data(gain_by_length, tpps=(2, 20, 200), best=1):
    """Losses whose best lr is grid point ``best`` and whose gain is the given array."""
    gain = np.asarray(gain_by_length, dtype=float)  # (seed, tpp)
    cos = np.full(gain.shape + (4,), 2.0)
    cos[..., best] = 1.0
    d2z_loss = np.full_like(cos, 2.0)
    d2z_loss[..., best] = 1.0 - gain
    return {"lrs": [3e-3, 1e-2, 3e-2, 1e-1], "tpps": list(tpps),
            "seeds": list(range(gain.shape[0])), "d2z": d2z_loss, "cosine": cos}


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
