"""Initial guessing bias (Francazi et al. 2024, papers.md row 16): measure and probe."""

import pytest
import torch

import trainlab.init as tinit
from trainlab.models import build_model
from trainlab.probes import PROBES, ProbeContext
from trainlab.probes.guessing_bias import (
    GuessingBiasProbe,
    guessing_bias,
    guessing_bias_distribution,
)


def test_fractions_match_a_direct_count():
    model = build_model("mlp", (6,), 4, depth=2, width=8)
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    gb = guessing_bias(model, x)
    pred = model(x).argmax(1)
    ref = [(pred == c).double().mean().item() for c in range(4)]
    assert list(gb.class_fractions) == pytest.approx(ref, abs=1e-12)
    assert gb.max_fraction == pytest.approx(max(ref), abs=1e-12)
    assert 0 <= gb.entropy_ratio <= 1


def _dist(act, scheme):
    x = torch.randn(300, 64, generator=torch.Generator().manual_seed(0))

    def build(g):
        m = build_model("mlp", (64,), 2, depth=5, width=128, activation=act, bias=False)
        tinit.apply(m, scheme, generator=g)
        return m

    return guessing_bias_distribution(build, x, seeds=30)


def test_relu_depth_creates_bias_tanh_does_not():
    """Paper: ReLU nets favour one class at init; a centred activation without bias does not."""
    tanh = _dist("tanh", "xavier-normal")
    relu = _dist("relu", "kaiming-normal")
    assert tanh.mean() < 0.57 and tanh.std() < 0.05
    assert relu.mean() > 0.7


def test_probe_is_registered_and_leaves_model_untouched():
    entry = PROBES.entry("guessing-bias")
    assert entry.obj is GuessingBiasProbe and 16 in entry.papers
    model = build_model("mlp", (5,), 3, depth=2, width=8)
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(20, 5)
    ctx = ProbeContext(step=0, model=model, loss_fn=torch.nn.functional.cross_entropy,
                       batch=(x, torch.zeros(20, dtype=torch.long)))
    out = GuessingBiasProbe().measure(ctx)
    assert set(out) == {"igb_max_fraction", "igb_entropy_ratio"}
    assert out["igb_max_fraction"] == guessing_bias(model, x).max_fraction
    assert model.training
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
