"""Landscape slices and interpolation against direct evaluations."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import assert_unchanged, batch, context, mlp, snapshot
from torch import nn

from trainlab.analyses.landscape import (
    filter_normalize,
    interpolate,
    random_direction,
    slice_1d,
    slice_2d,
)
from trainlab.curvature import trainable_params
from trainlab.probes.interpolation import InitInterpolation


def loss_at(model, params, x, y, loss_fn=F.cross_entropy):
    """Reference: a deep copy with the parameters written in, in eval mode."""
    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(params[n])
        return float(loss_fn(m(x), y))


def test_filter_normalization_norms():
    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.Flatten(), nn.Linear(8, 3)).double()
    params = trainable_params(model)
    d = random_direction(params, generator=torch.Generator().manual_seed(0))
    for n, w in params.items():
        if w.dim() == 1:
            assert torch.count_nonzero(d[n]) == 0
        else:
            torch.testing.assert_close(d[n].reshape(w.shape[0], -1).norm(dim=1),
                                       w.reshape(w.shape[0], -1).norm(dim=1))
    kept = filter_normalize(d, params, ignore_1d=False)
    assert torch.equal(kept["0.bias"], params["0.bias"])


def test_slices_match_direct_evaluation_and_restore_model():
    model = mlp()
    x, y = batch()
    ctx = context(model, x, y)  # grads and a step taken: something to preserve
    model.train()
    snap = snapshot(model)
    params = trainable_params(model)
    g = torch.Generator().manual_seed(3)
    d1, d2 = random_direction(params, generator=g), random_direction(params, generator=g)
    ts = [-0.5, 0.0, 0.7]
    line = slice_1d(model, F.cross_entropy, x, y, d1, ts)
    grid = slice_2d(model, F.cross_entropy, x, y, d1, d2, ts, [0.2, -0.3])
    assert_unchanged(model, snap)
    for i, t in enumerate(ts):
        p = {n: params[n] + t * d1[n] for n in params}
        assert float(line[i]) == pytest.approx(loss_at(model, p, x, y), rel=1e-12)
        for j, s in enumerate([0.2, -0.3]):
            p2 = {n: params[n] + t * d1[n] + s * d2[n] for n in params}
            assert float(grid[i, j]) == pytest.approx(loss_at(model, p2, x, y), rel=1e-12)
    out = InitInterpolation(points=5).measure(ctx)
    assert_unchanged(model, snap)
    assert out["interp/barrier"] >= 0


def test_interpolation_barrier_and_ends():
    model = mlp()
    x, y = batch()
    a = trainable_params(model)
    a = {n: v.clone() for n, v in a.items()}
    b = {n: v + 0.8 * torch.randn_like(v) for n, v in a.items()}
    res = interpolate(model, F.cross_entropy, x, y, a, b, points=7)
    assert float(res.losses[0]) == pytest.approx(loss_at(model, a, x, y), rel=1e-12)
    assert float(res.losses[-1]) == pytest.approx(loss_at(model, b, x, y), rel=1e-12)
    mids = [loss_at(model, {n: (1 - t) * a[n] + t * b[n] for n in a}, x, y)
            - ((1 - t) * float(res.losses[0]) + t * float(res.losses[-1]))
            for t in torch.linspace(0, 1, 7).tolist()]
    assert res.barrier == pytest.approx(max(0.0, max(mids)), rel=1e-9, abs=1e-12)


def test_convex_problem_has_no_barrier():
    """Least squares is convex: no barrier between init and the exact solution, and the
    loss decreases monotonically towards the minimum."""
    torch.manual_seed(0)
    x = torch.randn(30, 4, dtype=torch.float64)
    y = torch.randn(30, 2, dtype=torch.float64)
    model = nn.Linear(4, 2, bias=False).double()
    init = {n: v.clone() for n, v in trainable_params(model).items()}
    sol = {"weight": torch.linalg.lstsq(x, y).solution.T}
    res = interpolate(model, F.mse_loss, x, y, init, sol, points=11)
    assert res.barrier == 0.0
    assert res.monotone
