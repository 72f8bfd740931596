"""Fixup for residual networks, and the small-init scale option."""

import math

import pytest
import torch

import trainlab.init as tinit
from trainlab.models import build_model


@pytest.mark.parametrize("kind", ["mlp", "conv1d"])
def test_fixup_blocks_are_identity_and_logits_zero(kind):
    model = build_model("resnet", (40,), 10, blocks=6, width=32, kind=kind).double()
    tinit.apply(model, "fixup", generator=torch.Generator().manual_seed(0))
    x = torch.randn(8, 40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.equal(model(x), torch.zeros(8, 10, dtype=torch.float64))
    h = torch.relu(torch.randn(8, 32, 40 if kind == "conv1d" else 1, dtype=torch.float64)
                   ).squeeze(-1)
    for block in model.blocks:
        assert torch.equal(block.branch(h), torch.zeros_like(h))
    model(x).sum().backward()
    assert model.fc.weight.grad.abs().sum() > 0


def test_fixup_branch_in_std():
    model = build_model("resnet", (40,), 10, blocks=9, width=256).double()
    tinit.apply(model, "fixup", generator=torch.Generator().manual_seed(0))
    w = model.blocks[0].branch_in.weight
    target = 2 / 256 / 9  # He fan-out variance times L^{-1}
    n = w.numel()
    assert abs(w.pow(2).mean().item() / target - 1) < 4 * math.sqrt(2 / n)


def test_small_scales_the_base_scheme_exactly():
    a = build_model("mlp", (10,), 3, depth=3, width=20).double()
    b = build_model("mlp", (10,), 3, depth=3, width=20).double()
    tinit.apply(a, "kaiming-normal", generator=torch.Generator().manual_seed(5))
    tinit.apply(b, "small", generator=torch.Generator().manual_seed(5), scale=1e-3)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pb, 1e-3 * pa, rtol=1e-12, atol=0)
