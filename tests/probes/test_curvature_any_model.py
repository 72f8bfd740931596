"""Curvature probes: eigenvalues carry their accuracy, method switches are said, dropout
gets one fixed mask (dense float64 references)."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import batch, context, mlp
from torch import nn
from torch.func import functional_call

from trainlab.curvature import HessianOperator
from trainlab.probes import PROBES


def dense_top(model: nn.Module, x, y, rng: torch.Tensor | None = None) -> float:
    """Top eigenvalue of the dense Hessian of the batch loss; with ``rng``, every forward
    pass replays that global RNG state (one fixed dropout mask)."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    shapes = [(n, p.shape, p.numel()) for n, p in params.items()]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        i, d = 0, {}
        for n, shape, k in shapes:
            d[n] = flat[i:i + k].view(shape)
            i += k
        saved = torch.get_rng_state()
        if rng is not None:
            torch.set_rng_state(rng)
        out = functional_call(model, d, (x,))
        torch.set_rng_state(saved)
        return F.cross_entropy(out, y)

    flat = torch.cat([p.reshape(-1) for p in params.values()])
    return torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat))[-1].item()


def test_an_unconverged_eigenvalue_is_never_stored_as_exact():
    model, (x, y) = mlp(), batch()
    out = PROBES.get("sharpness")(max_iter=2, tol=1e-12).measure(context(model, x, y))
    assert "sharpness" not in out and "eos_ratio" not in out
    assert out["sharpness_converged"] == 0.0 and out["sharpness_residual"] > 0
    assert out["sharpness_unconverged"] <= dense_top(model, x, y) + 1e-10  # a Ritz value
    spec = PROBES.get("hessian-spectrum")(k=2, max_iter=2, trace_matvecs=3,
                                          frobenius_matvecs=2).measure(context(model, x, y))
    assert "hessian/eig0" not in spec and "stability/gd" not in spec
    assert spec["hessian/eig0_converged"] == 0.0 and "hessian/eig0_unconverged" in spec


def test_a_converged_eigenvalue_carries_its_residual():
    model, (x, y) = mlp(), batch()
    ctx = context(model, x, y)
    out = PROBES.get("sharpness")(tol=1e-10, max_iter=200).measure(ctx)
    top = dense_top(model, x, y)
    assert out["sharpness"] == pytest.approx(top, rel=1e-8)
    assert out["sharpness_converged"] == 1.0
    assert out["sharpness_residual"] <= 1e-10 * top
    assert out["eos_ratio"] == pytest.approx(top * ctx.lr / 2, rel=1e-8)


def test_the_switch_to_forward_over_reverse_is_logged_once(monkeypatch, caplog):
    def no_double_backward(self, tangent, batch, index):
        raise RuntimeError("no double backward for this operator")

    monkeypatch.setattr(HessianOperator, "_double_backward", no_double_backward)
    model, (x, y) = mlp(), batch()
    probe = PROBES.get("sharpness")(tol=1e-10, max_iter=200)
    run_cache: dict = {}
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        for _ in range(2):
            ctx = context(model, x, y)
            ctx.run_cache = run_cache
            out = probe.measure(ctx)
    assert out["sharpness"] == pytest.approx(dense_top(model, x, y), rel=1e-8)
    switched = [r for r in caplog.records if "forward-over-reverse" in r.getMessage()]
    assert len(switched) == 1 and "no double backward" in switched[0].getMessage()


def dropout_mlp() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 3)).double()


@pytest.mark.parametrize("name", ["sharpness", "gfs-sharpness"])
def test_curvature_under_dropout_is_that_of_one_fixed_mask(name):
    model, (x, y) = dropout_mlp(), batch()
    model.train()
    ctx = context(model, x, y)  # its training step draws masks from the global RNG
    rng = torch.get_rng_state()
    params = {"sharpness": {"tol": 1e-10, "max_iter": 200},
              "gfs-sharpness": {"max_evals": 4}}[name]
    out = PROBES.get(name)(**params).measure(ctx)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(m.training for m in model.modules())
    if name == "sharpness":
        assert out["sharpness"] == pytest.approx(dense_top(model, x, y, rng), rel=1e-8)
        # not the Hessian without dropout
        assert abs(out["sharpness"] - dense_top(model.eval(), x, y)) > 1e-3
    else:
        assert out["gfs/grad_evals"] >= 1 and "gfs/sharpness_converged" in out


def test_the_hessian_with_a_fixed_mask_matches_the_dense_one_in_every_product():
    model, (x, y) = dropout_mlp(), batch()
    rng = torch.get_rng_state()
    op = HessianOperator(model, F.cross_entropy, (x, y), fixed_randomness=True)
    v = torch.randn(op.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    hv = op.matvec(v)
    torch.testing.assert_close(op.matmat(torch.stack([v, -v], 1)),
                               torch.stack([hv, -hv], 1), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(op.matvec(v), hv, rtol=0, atol=0)
    assert torch.equal(torch.get_rng_state(), rng)
