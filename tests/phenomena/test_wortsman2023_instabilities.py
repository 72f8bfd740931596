"""Attention-logit growth (row 98): the entropy measure against its closed form, and the
check against hand-made data on both sides of each threshold."""

from __future__ import annotations

import math

import torch

from trainlab.models import build_model
from trainlab.phenomena.wortsman2023_instabilities import AttentionLogitGrowth, _attention_entropy


def test_entropy_of_uniform_causal_attention_is_mean_log_of_prefix_length():
    # zero query/key maps: every logit is 0, so query t attends uniformly to t + 1 keys
    model = build_model("transformer", (8,), 16, d_model=16, heads=2, layers=2).double()
    with torch.no_grad():
        for block in model.blocks:
            block.attn.qkv.weight[:32].zero_()
            block.attn.qkv.bias[:32].zero_()
    tokens = torch.randint(0, 16, (5, 8), generator=torch.Generator().manual_seed(0))
    expected = sum(math.log(t + 1) for t in range(1, 8)) / 7
    assert abs(_attention_entropy(model, tokens) - expected) < 1e-9
    assert not model.blocks[0].attn._forward_pre_hooks  # hooks removed


def _data(plain_max: float, entropy: float, z_log_z: float, drift: float) -> dict:
    base = {"entropy": 0.5, "loss": 1e-3, "log_z": 3.0 + drift, "log_z0": 3.0}
    return {"lrs": [0.1], "steps": 1, "runs": {
        "plain@0.1": {**base, "logit_max": plain_max, "entropy": entropy, "loss": 2e-3},
        "qk@0.1": {**base, "logit_max": 10.0},
        "qk+z@0.1": {**base, "logit_max": 10.0, "log_z": z_log_z}}}


def test_check_thresholds():
    phen = AttentionLogitGrowth()
    assert all(c.passed for c in phen.check(_data(60.0, 0.1, 0.5, 3.0)))
    failed = [c.name for c in phen.check(_data(40.0, 0.3, 1.5, 1.0)) if not c.passed]
    assert len(failed) == 4  # ratio 4 < 5, entropy 0.3, |log Z| 1.5, drift 1; loss still wins
