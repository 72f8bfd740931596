"""Probes read any model's outputs through one adapter, and every probe that measures
nothing says why."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import batch, context, mlp
from torch import nn

from trainlab.errors import ConfigError
from trainlab.optim.ademamix import AdEMAMix
from trainlab.probes import PROBES, ProbeContext
from trainlab.probes._outputs import logits, own_loss


class Output(OrderedDict):
    """A stand-in for a Hugging Face ``ModelOutput``: a mapping with attributes."""

    def __getattr__(self, key):
        return self[key]


def test_the_adapter_reads_tensors_dicts_model_outputs_and_tuples():
    z = torch.randn(3, 4)
    assert logits(z) is z
    assert logits({"features": torch.zeros(1), "logits": z}) is z
    assert logits(Output(loss=torch.tensor(1.0), logits=z)) is z
    assert logits((z, torch.zeros(2))) is z
    with pytest.raises(ConfigError, match="no logits"):
        logits({"features": z})
    assert own_loss(torch.tensor(2.0)) == 2.0
    assert own_loss(Output(loss=torch.tensor(3.0), logits=z)) == 3.0
    with pytest.raises(ConfigError, match="loss"):
        own_loss(z)


class DictOut(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return {"logits": self.inner(x)}


def test_logit_divergence_on_a_dict_output_reads_its_logits():
    model, (x, y) = mlp(), batch()
    plain = PROBES.get("logit-divergence")().measure(context(model, x, y))
    wrapped = DictOut(model)
    ctx = context(wrapped, x, y, loss_fn=lambda out, t: F.cross_entropy(out["logits"], t))
    out = PROBES.get("logit-divergence")().measure(ctx)
    assert out.keys() == plain.keys()
    z = model(x).detach()
    assert float(out["logit/log_z_mean"]) == pytest.approx(
        float(torch.logsumexp(z, -1).mean()), rel=1e-12)


def test_silent_probes_say_why():
    model, (x, y) = mlp(), batch()
    ctx = context(model, x, y, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    for name in ("adam-step-size", "eval"):
        assert PROBES.get(name)().measure(ctx) == {}
    assert "SGD has no adaptive step size" in ctx.notes["adam-step-size"]
    assert "no task" in ctx.notes["eval"]
    adagrad = torch.optim.Adagrad(model.parameters(), lr=0.1)
    ctx = context(model, x, y, optimizer=adagrad)
    assert PROBES.get("preconditioned-sharpness")().measure(ctx) == {}
    assert "Adagrad" in ctx.notes["preconditioned-sharpness"]
    tokens = ProbeContext(step=1, model=model, loss_fn=F.cross_entropy,
                          batch=(torch.zeros(4, 5, dtype=torch.long), y[:4]))
    assert PROBES.get("input-sensitivity")().measure(tokens) == {}
    assert "floating-point" in tokens.notes["input-sensitivity"]
    flat = nn.Linear(5, 3, bias=False).double()
    nn.init.zeros_(flat.weight)  # constant loss along every filter-normalized slice
    ctx = context(flat, x, y, lr=0.0)
    assert PROBES.get("roughness")(directions=2).measure(ctx) == {}
    assert "constant" in ctx.notes["roughness"]


def test_adam_step_size_reads_trainlab_optimizers():
    model, (x, y) = mlp(), batch()
    ctx = context(model, x, y, optimizer=AdEMAMix(model.parameters(), lr=0.01))
    out = PROBES.get("adam-step-size")().measure(ctx)
    assert "adam_step/q50" in out and not ctx.notes
