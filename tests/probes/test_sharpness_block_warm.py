"""Sharpness(method="block-warm"): a cold Lanczos measurement first, then warm block starts
from the kept top-3 Ritz vectors, checked against the dense float64 Hessian of a small
model; its options are validated; the default method records what it did before."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import batch, context, mlp

from trainlab.curvature import HessianOperator
from trainlab.errors import ConfigError
from trainlab.probes.sharpness import Sharpness


def dense_top(model, x, y) -> float:
    op = HessianOperator(model, F.cross_entropy, (x, y))
    h = torch.stack([op.matvec(e) for e in torch.eye(op.dim, dtype=torch.float64)])
    return torch.linalg.eigvalsh((h + h.T) / 2)[-1].item()


def test_block_warm_measurements_against_the_dense_hessian():
    model = mlp(seed=3, sizes=(5, 12, 8, 3))
    x, y = batch(n=40, seed=2)
    probe, plain = Sharpness(method="block-warm"), Sharpness()
    g = torch.Generator().manual_seed(0)
    for step in range(4):
        if step:  # a small update between measurements
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(3e-2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        ctx = context(model, x, y, loss_fn=F.cross_entropy)
        lam = dense_top(model, x, y)
        out = probe.measure(dataclasses.replace(
            ctx, cache={}, generator=torch.Generator().manual_seed(step)))
        ref = plain.measure(dataclasses.replace(
            ctx, cache={}, generator=torch.Generator().manual_seed(step)))
        assert out["sharpness_converged"] == 1.0
        assert probe._v.shape == (len(probe._v), 3)  # the next warm block
        if step == 0:  # cold: the Lanczos measurement, asking for the top 3 pairs
            assert "sharpness_error_estimate" not in out
            assert out["sharpness"] == pytest.approx(lam, rel=1e-4)
            continue
        err = (lam - out["sharpness"]) / lam
        assert 0 <= err <= 1e-3 and err <= out["sharpness_error_estimate"] + 1e-12
        assert out["sharpness_error_estimate"] <= 1e-3
        assert out["sharpness_matvecs"] < ref["sharpness_matvecs"]
        assert out["eos_ratio"] == pytest.approx(out["sharpness"] * ctx.lr / 2)
    # the kept block travels with the probe's state
    other = Sharpness(method="block-warm")
    other.load_state_dict(probe.state_dict())
    assert torch.equal(other._v, probe._v)


def test_options_are_validated_and_the_default_is_unchanged():
    with pytest.raises(ConfigError, match="'lanczos', 'block-warm'"):
        Sharpness(method="lobpcg")
    with pytest.raises(ConfigError, match="'block'.*block-warm"):
        Sharpness(block=2)
    with pytest.raises(ConfigError, match="block"):
        Sharpness(method="block-warm", block=0)
    assert Sharpness(method="block-warm").block == 3
    assert Sharpness(method="block-warm", block=2).block == 2
    model = mlp(seed=3, sizes=(5, 12, 8, 3))
    x, y = batch(n=40, seed=2)
    default = Sharpness()
    out = default.measure(context(model, x, y, loss_fn=F.cross_entropy))
    assert "sharpness_error_estimate" not in out and default._v.ndim == 1
