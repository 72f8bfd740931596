"""Roughness index (row 15): the normalized total variation on analytic slices, the whole
index against a plain reference written from the authors' code (own direction draws, own
loss evaluations on a copied model), closed-form slices through a model, and the probe."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import assert_unchanged, batch, context, mlp, snapshot
from torch import nn

from trainlab.analyses import ANALYSES
from trainlab.analyses.roughness import normalized_total_variation, roughness_index
from trainlab.errors import ConfigError
from trainlab.probes.roughness import RoughnessIndex

LAM = 0.1
T = torch.linspace(-LAM, LAM, 11, dtype=torch.float64)


def reference_ntv(f: list[float], lam: float) -> float:
    """The authors' per-direction value: sum |f_i - f_{i+1}| / (2 lam) / (max - min)."""
    tv = sum(abs(f[i] - f[i + 1]) for i in range(len(f) - 1))
    return tv / (2 * lam) / (max(f) - min(f))


def test_ntv_of_analytic_slices():
    bowl = T ** 2
    assert float(normalized_total_variation(bowl, 2 * LAM)) == pytest.approx(1 / LAM)
    assert float(normalized_total_variation(3 * T + 1, 2 * LAM)) == pytest.approx(1 / (2 * LAM))
    # a sinusoid-perturbed bowl: more variation for the same interval, as the paper predicts
    t = torch.linspace(-LAM, LAM, 201, dtype=torch.float64)
    wavy = t ** 2 + 1e-3 * torch.sin(2 * math.pi * 10 * t / LAM)
    got = float(normalized_total_variation(wavy, 2 * LAM))
    assert got == pytest.approx(reference_ntv(wavy.tolist(), LAM), rel=1e-12)
    assert got > 3 / LAM
    assert math.isnan(float(normalized_total_variation(torch.ones(5), 1.0)))
    with pytest.raises(ConfigError, match="interval_length"):
        normalized_total_variation(bowl, 0.0)


def reference_index(model, loss_fn, x, y, directions, lam, m, seed):
    """RI from scratch: Gaussian directions drawn tensor by tensor in parameter order, each
    row of a matrix scaled to the weights' row norm, biases copied from the weights; losses
    evaluated on a deep copy whose weights are overwritten; RI = std(ddof=1) / mean."""
    g = torch.Generator().manual_seed(seed)
    params = [p.detach().clone() for p in model.parameters()]
    ts = [-lam + 2 * lam * i / m for i in range(m + 1)]
    probe = copy.deepcopy(model).eval()
    values = []
    for _ in range(directions):
        dirs = []
        for w in params:
            d = torch.randn(w.shape, generator=g, dtype=w.dtype)
            if w.dim() <= 1:
                d = w.clone()
            else:
                for r in range(w.shape[0]):
                    d[r] = d[r] * w[r].norm() / (d[r].norm() + 1e-10)
            dirs.append(d)
        f = []
        for t in ts:
            with torch.no_grad():
                for p, w, d in zip(probe.parameters(), params, dirs):
                    p.copy_(w + t * d)
                f.append(float(loss_fn(probe(x), y)))
        values.append(reference_ntv(f, lam))
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return std / mean, values


def test_index_matches_plain_reference_and_restores_model():
    model = mlp(seed=2)
    x, y = batch()
    model.train()
    snap = snapshot(model)
    res = roughness_index(model, F.cross_entropy, x, y, directions=6, radius=0.5, intervals=8,
                          generator=torch.Generator().manual_seed(4))
    assert_unchanged(model, snap)
    ri, values = reference_index(model, F.cross_entropy, x, y, 6, 0.5, 8, seed=4)
    torch.testing.assert_close(res.ntv, torch.tensor(values, dtype=torch.float64))
    assert res.index == pytest.approx(ri, rel=1e-10)
    assert res.mean == pytest.approx(sum(values) / 6, rel=1e-12)
    again = roughness_index(model, F.cross_entropy, x, y, directions=6, radius=0.5,
                            intervals=8, generator=torch.Generator().manual_seed(4))
    assert again.index == res.index
    assert ANALYSES.get("roughness-index") is roughness_index


def test_least_squares_minimum_gives_parabolas_and_zero_index():
    """At the exact least-squares minimum every slice is a parabola centred at t = 0, so each
    normalized total variation is 1/lambda and the index is 0; away from the minimum the
    vertices move off centre by different amounts and the index is positive."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, dtype=torch.float64, generator=g)
    y = torch.randn(40, 3, dtype=torch.float64, generator=g)
    model = nn.Linear(5, 3, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y).solution.T)
    res = roughness_index(model, F.mse_loss, x, y, directions=5,
                          generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(res.ntv, torch.full((5,), 1 / LAM, dtype=torch.float64))
    assert res.index == pytest.approx(0.0, abs=1e-9)
    with torch.no_grad():
        model.weight.mul_(1.1)
    off = roughness_index(model, F.mse_loss, x, y, directions=5,
                          generator=torch.Generator().manual_seed(0))
    assert off.index > 1e-3


class Point(nn.Module):
    """The parameters themselves are the output: the loss is any function of them."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return self.w


def test_oscillation_raises_the_index():
    """Smooth bowl centred on the point: RI = 0. The same bowl with a ripple: RI > 0, and
    every slice has more normalized variation than the parabola's 1/lambda."""
    w0 = torch.tensor([[1.0, -2.0, 0.5], [0.3, 1.5, -1.0]], dtype=torch.float64)

    def bowl(out, _y):
        return ((out - w0) ** 2).sum()

    def rough(out, _y):
        return bowl(out, _y) + 0.05 * torch.sin(40.0 * out).sum()

    smooth = roughness_index(Point(w0), bowl, None, None, directions=8,
                             generator=torch.Generator().manual_seed(1))
    wavy = roughness_index(Point(w0), rough, None, None, directions=8,
                           generator=torch.Generator().manual_seed(1))
    assert smooth.index == pytest.approx(0.0, abs=1e-9)
    assert wavy.index > 0.05
    assert bool((wavy.ntv > 1 / LAM).all())


def test_bad_arguments_and_constant_slices():
    model = mlp()
    x, y = batch()
    for kw in ({"directions": 1}, {"radius": 0.0}, {"intervals": 1}):
        with pytest.raises(ConfigError):
            roughness_index(model, F.cross_entropy, x, y, **kw)
        with pytest.raises(ConfigError):
            RoughnessIndex(**kw)
    flat = roughness_index(Point(torch.ones(2, 2, dtype=torch.float64)),
                           lambda o, _y: torch.zeros((), dtype=torch.float64), None, None,
                           directions=2, generator=torch.Generator().manual_seed(0))
    assert math.isnan(flat.index)


def test_probe_reports_index_and_restores_model():
    model = mlp()
    x, y = batch()
    ctx = context(model, x, y)
    snap = snapshot(model)
    probe = RoughnessIndex(directions=4, intervals=6)
    out = probe.measure(ctx)
    assert_unchanged(model, snap)
    ref = roughness_index(model, F.cross_entropy, x, y, directions=4, intervals=6,
                          generator=torch.Generator().manual_seed(0))
    assert out["roughness_index"] == pytest.approx(ref.index, rel=1e-12)
    assert out["roughness/ntv_std"] == pytest.approx(ref.std, rel=1e-12)
    assert out["roughness/ntv_mean"] >= 1 / (2 * probe.radius) - 1e-9
    assert (RoughnessIndex().directions, RoughnessIndex().radius,
            RoughnessIndex().intervals) == (100, 0.1, 10)
