"""LoRA init and learning rate (row 32): both inits start at the base model (BA = 0), the
stable-lr scan stops at the first stable lr, and the check's slopes match a hand fit."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from trainlab.init import apply as init_apply
from trainlab.models.lora import add_lora
from trainlab.phenomena.hayou2024_lora_init import LoRAInitLearningRate


def test_both_inits_leave_the_base_output_unchanged():
    for scheme in ("lora-a", "lora-b"):
        base = nn.Linear(6, 5)
        model = nn.Sequential(base)
        x = torch.randn(3, 6)
        before = base(x).detach()
        add_lora(model, rank=2)
        init_apply(model, scheme, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(model(x), before)


def test_scan_stops_at_first_stable_lr(monkeypatch):
    phen = LoRAInitLearningRate()
    calls = []

    def fake(n, init, lr, seed, targets=None):
        calls.append(lr)
        return 0.2 if lr <= 0.25 else math.inf

    monkeypatch.setattr(phen, "_relative_loss", fake)
    lr, tried = phen._largest_stable_lr(64, "A", 0)
    assert lr == 0.25 and calls == [4.0, 2.0, 1.0, 0.5, 0.25] and len(tried) == 5


def test_target_cache_gives_the_same_losses():
    # the runs of one scan share the teacher's outputs: a run reading them from the cache
    # (filled by a run at another lr) ends exactly where a run computing its own ends
    phen = LoRAInitLearningRate()
    phen.STEPS = 20
    cache: list[torch.Tensor] = []
    phen._relative_loss(16, "B", 0.5, 3, cache)
    assert len(cache) == 20
    assert phen._relative_loss(16, "B", 0.05, 3, cache) == phen._relative_loss(16, "B", 0.05, 3)
    assert phen._relative_loss(16, "A", 0.05, 3, []) == phen._relative_loss(16, "A", 0.05, 3)


def test_check_slopes():
    data = {"widths": [64, 256, 1024], "eta_A": [[2.0, 1.0, 0.25]] * 3,
            "eta_B": [[2.0, 0.5, 0.0625]] * 3}
    checks = LoRAInitLearningRate().check(data)
    assert all(c.passed for c in checks)
    gap = (np.polyfit([6, 8, 10], np.log2([2.0, 1.0, 0.25]), 1)[0]
           - np.polyfit([6, 8, 10], np.log2([2.0, 0.5, 0.0625]), 1)[0])
    assert abs(checks[1].measured - gap) < 1e-12 and checks[1].seeds == 3
    data["eta_A"] = [[1.0, 0.5, 0.0625]] * 3  # below Init[B] at n = 64
    assert not LoRAInitLearningRate().check(data)[0].passed
    # a gap smaller than its seed-to-seed spread does not pass
    data = {"widths": [64, 256, 1024], "eta_B": [[2.0, 0.5, 0.0625]] * 3,
            "eta_A": [[2.0, 0.5, 0.0625], [2.0, 0.5, 0.0625], [2.0, 2.0, 2.0]]}
    assert not LoRAInitLearningRate().check(data)[1].passed
