"""Every preset on models no one here wrote, in a plain training loop with a Monitor: the run
completes, every probe measures or records why, and the training is exactly the one without
the monitor (weights, buffers, modes, global RNG)."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.probes import expand, parse_spec
from trainlab.train import Monitor


class DictNet(nn.Module):
    """Returns a dict of outputs; BatchNorm in training mode."""

    def __init__(self):
        super().__init__()
        self.a, self.bn, self.b = nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Linear(6, 3)

    def forward(self, x):
        return {"logits": self.b(torch.relu(self.bn(self.a(x)))), "features": x}


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.head = nn.LSTM(3, 4, batch_first=True), nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


class OwnLoss(nn.Module):
    """Computes its own loss from (inputs, targets) arguments."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 1))

    def forward(self, x, y):
        return F.mse_loss(self.net(x).squeeze(-1), y)


def _ce_dict(out, y):
    return F.cross_entropy(out["logits"], y)


def build(kind: str):
    """``(model, loss_fn, inputs, targets)``; ``loss_fn=None``: the model's own loss."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 5, generator=g)
    labels = torch.randint(0, 3, (8,), generator=g)
    if kind == "mlp-dropout":
        model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Dropout(0.3), nn.Linear(6, 3))
        return model, F.cross_entropy, x, labels
    if kind == "cnn-batchnorm":
        model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2), nn.ReLU(), nn.Flatten(),
                              nn.Linear(6, 3))
        return model, F.cross_entropy, x[:, None, :], labels
    if kind == "dict-output":
        return DictNet(), _ce_dict, x, labels
    if kind == "lstm":
        return LSTMNet(), F.cross_entropy, torch.randn(8, 4, 3, generator=g), labels % 2
    if kind == "own-loss":
        return OwnLoss(), None, (x, torch.randn(8, generator=g)), None
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=16, n_positions=6, n_embd=32, n_layer=2,
                                     n_head=2, bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config)
    tokens = torch.randint(0, 16, (4, 6), generator=g)

    def lm_loss(out, y):
        return F.cross_entropy(out.logits.reshape(-1, 16), y.reshape(-1))

    return model, lm_loss, tokens, torch.roll(tokens, -1, 1)


KINDS = ("mlp-dropout", "cnn-batchnorm", "dict-output", "lstm", "own-loss", "gpt2")
# the expensive probes at a small budget (the test checks that they run, not their values)
CHEAP = {"hessian-spectrum": {"k": 2, "trace_matvecs": 3, "frobenius_matvecs": 2,
                              "max_iter": 10},
         "gradient-subspace": {"k": 2}, "gfs-sharpness": {"max_evals": 8, "max_iter": 10},
         "sharpness": {"max_iter": 10}, "preconditioned-sharpness": {"max_iter": 10},
         "init-interpolation": {"points": 3}, "input-sensitivity": {"max_examples": 4}}
STEPS = 2
# what may not be measured, and only that: no task (eval, gen-gap-change), no trainlab
# attention layer, and input derivatives where they are undefined (BatchNorm in training
# mode, integer tokens, a tuple of inputs) or torch has no forward-mode LSTM
NO_TASK = {"eval", "gen-gap-change"}
SKIPS = {"economy": set(), "standard": {"eval"},
         "full": NO_TASK | {"attention-logits", "input-sensitivity"}}
BATCHNORM = {"cnn-batchnorm", "dict-output"}


def train(kind: str, preset: str | None):
    """Two updates of AdamW in a plain loop; with ``preset``, a Monitor measures at steps 0 and 2.
    Returns the model, its state, the global RNG after the loop, and the monitor."""
    model, loss_fn, x, y = build(kind)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(123)
    mon = None
    if preset is not None:
        names = {name for name, _ in parse_spec(preset)}
        mon = Monitor(model, loss_fn=loss_fn, optimizer=opt, probes=preset, every=2,
                      total_steps=STEPS,
                      probe_params={k: v for k, v in CHEAP.items() if k in names})
    measured: set[str] = set()
    for probe in mon.probes if mon else ():
        def measure(ctx, probe=probe, inner=probe.measure):
            out = inner(ctx)
            if out:
                measured.add(probe.name)
            return out
        probe.measure = measure
    batch = (x, y)
    for step in range(STEPS + 1):
        opt.zero_grad()
        loss = model(*x) if loss_fn is None else loss_fn(model(x), y)
        loss.backward()
        if mon is not None:
            assert mon.step(loss, batch)
        if step < STEPS:
            opt.step()
    summary = mon.finish() if mon else {}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return model, state, torch.get_rng_state(), mon, measured, summary


# torch warns that vmap over an LSTM runs a slow fallback (the per-example gradients)
@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")
@pytest.mark.parametrize("preset", ["economy", "standard", "full"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_preset_runs_on_any_architecture(kind, preset, caplog):
    ref_model, ref_state, ref_rng, _, _, _ = train(kind, None)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        model, state, rng, mon, measured, summary = train(kind, preset)
    # the monitor changed nothing of the training: weights, buffers, modes, RNG
    assert state.keys() == ref_state.keys()
    for k in state:
        assert torch.equal(state[k], ref_state[k]), k
    assert all(m.training for m in model.modules())
    assert torch.equal(rng, ref_rng)
    # every probe measured, or said why it did not (in the run record, warned once)
    names = [n.split("@")[0] for n in expand(preset)]
    silent = [n for n in names if n not in measured and n not in mon.skipped]
    assert not silent, (silent, mon.skipped)
    expected = SKIPS[preset] - ({"input-sensitivity"} if kind == "mlp-dropout" else set())
    assert set(mon.skipped) == expected, mon.skipped
    assert set(mon.notes) == ({"grad-noise"} if kind in BATCHNORM and "grad-noise" in names
                              else set()), mon.notes
    assert summary.get("skipped_probes", {}) == mon.skipped
    warned = [r.getMessage() for r in caplog.records if r.name == "trainlab"]
    for name in {**mon.skipped, **mon.notes}:
        assert sum(f"probe {name!r}" in w for w in warned) == 1, (name, warned)
    # what every architecture gets: gradient norms, and curvature where a preset asks
    assert "grad_norm" in mon.history
    if "sharpness" in names:
        assert "sharpness" in measured, mon.skipped.get("sharpness")
    if "grad-noise" in names:
        assert "grad-noise" in measured, mon.skipped.get("grad-noise")
