"""Effective rank, stable rank, spectral norm and power-law alpha against references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from _probe_helpers import assert_unchanged, batch, context, mlp, snapshot

from trainlab.probes.effective_rank import EffectiveRank, effective_rank
from trainlab.probes.weight_spectrum import WeightSpectrum, power_law_alpha


def erank_numpy(a: np.ndarray) -> float:
    s = np.linalg.svd(a, compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def test_effective_rank_closed_forms():
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    equal = q[:, :3] @ q[:, 3:6].T  # three equal singular values: erank 3
    torch.testing.assert_close(effective_rank(equal), torch.tensor(3.0, dtype=torch.float64))
    s = torch.tensor([3.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    p = torch.tensor([0.75, 0.25], dtype=torch.float64)
    v, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    m = q[:, :4] @ torch.diag(s) @ v.T
    torch.testing.assert_close(effective_rank(m), torch.exp(-(p * p.log()).sum()))
    assert effective_rank(torch.zeros(3, 4)) == 0


def test_effective_rank_probe_against_numpy():
    model = mlp()
    x, y = batch()
    ctx = context(model, x, y)
    snap = snapshot(model)
    out = EffectiveRank().measure(ctx)
    assert_unchanged(model, snap)
    assert set(out) == {"effective_rank/0.weight", "effective_rank/2.weight",
                        "effective_rank/4.weight"}
    for n, p in model.named_parameters():
        if p.dim() == 2:
            ref = erank_numpy((p.detach() - ctx.init_params[n]).numpy())
            assert float(out[f"effective_rank/{n}"]) == pytest.approx(ref, rel=1e-10)


def test_weight_spectrum_probe_against_numpy():
    model = mlp(sizes=(30, 24, 3))
    x, y = batch(d=30)
    ctx = context(model, x, y)
    snap = snapshot(model)
    out = WeightSpectrum(min_tail=10).measure(ctx)
    assert_unchanged(model, snap)
    w = model[0].weight.detach().numpy()
    s = np.linalg.svd(w, compute_uv=False)
    assert float(out["spectral_norm/0.weight"]) == pytest.approx(s[0], rel=1e-10)
    assert float(out["stable_rank/0.weight"]) == pytest.approx((w ** 2).sum() / s[0] ** 2,
                                                                rel=1e-10)
    assert out["alpha/0.weight"] == pytest.approx(power_law_alpha(
        torch.from_numpy(s ** 2), min_tail=10).alpha)
    assert "alpha/2.weight" not in out  # 3 singular values: too few to fit


def test_power_law_recovers_pareto_exponent():
    g = np.random.default_rng(0)
    alpha = 3.0
    x = (1.0 - g.random(4000)) ** (-1.0 / (alpha - 1.0))  # density ~ x^-alpha on [1, inf)
    fit = power_law_alpha(torch.from_numpy(x), xmin=1.0)
    assert fit.alpha == pytest.approx(1 + len(x) / np.log(x).sum(), rel=1e-12)
    free = power_law_alpha(torch.from_numpy(x), min_tail=50)
    assert free.alpha == pytest.approx(alpha, abs=0.15)


def test_power_law_xmin_minimizes_ks_distance():
    """Reference: for each candidate xmin, the MLE exponent and scipy's two-sided KS
    statistic against the fitted Pareto law; the chosen xmin has the smallest one."""
    g = np.random.default_rng(1)
    body = g.random(150) * 2.0
    tail = 2.0 * (1.0 - g.random(80)) ** (-1.0 / 1.5)
    x = np.sort(np.concatenate([body, tail]))
    fit = power_law_alpha(torch.from_numpy(x), min_tail=10)
    best = (math.inf, None, None)
    for k in range(len(x) - 10 + 1):
        t = x[k:]
        a = 1 + len(t) / np.log(t / t[0]).sum()
        d = scipy.stats.kstest(t, scipy.stats.pareto(b=a - 1, scale=t[0]).cdf).statistic
        if d < best[0]:
            best = (d, a, t[0])
    assert fit.ks_distance == pytest.approx(best[0], rel=1e-9)
    assert fit.alpha == pytest.approx(best[1], rel=1e-9)
    assert fit.xmin == best[2]
