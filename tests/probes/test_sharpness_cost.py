"""The in-loop sharpness probe skips its double-backward trial product and its determinism
check once they have passed in a run, without changing any value."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import batch, context
from torch import nn

from trainlab.curvature import HessianOperator, lanczos
from trainlab.errors import ConfigError
from trainlab.probes.sharpness import Sharpness


def test_run_cache_skips_the_trial_product_and_keeps_values_bitwise(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 3)).double()
    calls = {"n": 0, "checks": 0}
    original = HessianOperator._double_backward
    check = HessianOperator._check_deterministic

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    def counting_checks(self):
        calls["checks"] += 1
        return check(self)

    monkeypatch.setattr(HessianOperator, "_double_backward", counting)
    monkeypatch.setattr(HessianOperator, "_check_deterministic", counting_checks)
    shared, cached, fresh = {}, Sharpness(tol=1e-8), Sharpness(tol=1e-8)
    for step in range(3):
        x, y = batch(seed=step + 1)
        ctx = context(model, x, y, step=step + 1)  # one SGD update, then this batch's grads
        rng = torch.get_rng_state()
        calls["n"] = calls["checks"] = 0
        a = cached.measure(dataclasses.replace(ctx, run_cache=shared, cache={},
                                                generator=torch.Generator().manual_seed(step)))
        used_cached = calls["n"]
        # the determinism check (two forward passes) also runs once per run_cache
        assert calls["checks"] == (1 if step == 0 else 0)
        assert torch.equal(torch.get_rng_state(), rng)
        calls["n"] = 0
        b = fresh.measure(dataclasses.replace(ctx, run_cache={}, cache={},
                                               generator=torch.Generator().manual_seed(step)))
        used_fresh = calls["n"]
        assert a == b  # every value, bit for bit (dropout masks included)
        assert a["sharpness_matvecs"] == b["sharpness_matvecs"]
        # the fresh run pays the trial product every time; the shared run_cache only once
        assert used_fresh == b["sharpness_matvecs"] + 1
        assert used_cached == a["sharpness_matvecs"] + (1 if step == 0 else 0)
    assert "sharpness" in a and a["sharpness_converged"] == 1.0


def test_trial_product_still_falls_back_when_double_backward_fails(caplog, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("no double backward here")

    monkeypatch.setattr(HessianOperator, "_double_backward", broken)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x, y = batch()
    ctx = context(model, x, y, loss_fn=F.cross_entropy)
    shared: dict = {}
    with caplog.at_level("WARNING", logger="trainlab"):
        out = Sharpness(tol=1e-8).measure(dataclasses.replace(ctx, run_cache=shared))
    assert "double backward failed" in caplog.text
    assert "hessian_double_backward_ok" not in shared
    dense = torch.func.hessian(lambda w: F.cross_entropy(
        torch.func.functional_call(model, w, (x,)), y))(dict(model.named_parameters()))
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    h = torch.cat([torch.cat([dense[a][b].reshape(sa, sb) for b, sb in zip(names, sizes)], 1)
                   for a, sa in zip(names, sizes)], 0)
    assert abs(out["sharpness"] - torch.linalg.eigvalsh(h)[-1].item()) < 1e-8


def test_eig_tol_is_an_opt_in_stop_that_passes_through_to_lanczos():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x, y = batch(n=40, seed=4)
    ctx = context(model, x, y)
    plain = Sharpness(tol=1e-6).measure(
        dataclasses.replace(ctx, generator=torch.Generator().manual_seed(5), cache={}))
    early = Sharpness(tol=1e-6, eig_tol=1e-6).measure(
        dataclasses.replace(ctx, generator=torch.Generator().manual_seed(5), cache={}))
    op = HessianOperator(model, F.cross_entropy, (x, y))
    ref = lanczos(op, k=1, tol=1e-6, eig_tol=1e-6, generator=torch.Generator().manual_seed(5))
    assert early["sharpness_matvecs"] == ref.matvecs < plain["sharpness_matvecs"]
    dense = torch.linalg.eigvalsh(torch.stack([op.matvec(e) for e in
                                               torch.eye(op.dim, dtype=torch.float64)]))[-1]
    assert early["sharpness"] == pytest.approx(dense.item(), rel=1e-6)
    assert plain["sharpness"] == pytest.approx(dense.item(), rel=1e-9)
    with pytest.raises(ConfigError, match="eig_tol"):
        Sharpness(eig_tol=0.0)
