"""The monitor's kept state for the norm probes (the fused pass's kept plans, the module
tree walked only on change) records the bits of a monitor that keeps none of it, also when
the model changes during the run; the snapshot's second buffer is allocated only when the
fused pass takes the parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.probes import build_probes, fused
from trainlab.train import Monitor
from trainlab.train.monitor import _Savepoint
from trainlab.train.trainable import TrainableParams

pytestmark = pytest.mark.skipif(not fused.available() or fused.library() is None,
                                reason="no C compiler: the fused path is not built")


def changes(step: int, model: nn.Sequential) -> None:
    """Between steps: a parameter replaced, a ``.data`` swapped, a parameter frozen and
    thawed, a parameter added."""
    with torch.no_grad():
        if step == 3:
            model[0].bias = nn.Parameter(model[0].bias * 0.5)
        elif step == 5:
            model[2].weight.data = model[2].weight.data * 1.5  # new memory, same object
        elif step == 7:
            model[0].weight.requires_grad_(False)
        elif step == 9:
            model[0].weight.requires_grad_(True)
        elif step == 11:
            model[2].register_parameter("scale", nn.Parameter(torch.ones(
                1, dtype=model[2].weight.dtype)))


def run(dtype: torch.dtype, every: int, kept: bool, monkeypatch, change=changes
        ) -> tuple[dict, int]:
    """The history as hex strings, and how many plans were built."""
    if not kept:  # no plan kept, the module tree walked at every step
        tensor_norms = fused.tensor_norms
        monkeypatch.setattr(fused, "tensor_norms", lambda w, g, i, p, want, copy_to=None,
                            plans=None, *a: tensor_norms(w, g, i, p, want, copy_to, None, *a))
        monkeypatch.setattr(TrainableParams, "_unchanged", lambda self: False)
    builds = []
    build = fused.NormsPlan.build
    monkeypatch.setattr(fused.NormsPlan, "build",
                        lambda *a: builds.append(1) or build(*a))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(7, 19), nn.Tanh(), nn.Linear(19, 3)).to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes("grad-norm,rotation,update-ratio,weight-norm",
                                      every=every), seed=1)
    g = torch.Generator().manual_seed(2)
    for step in range(14):
        x = torch.randn(16, 7, generator=g, dtype=dtype)
        y = torch.randint(0, 3, (16,), generator=g)
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.cross_entropy(out, y) + sum(
            p.sum() * 0 for n, p in model.named_parameters() if n.endswith("scale"))
        loss.backward()
        mon.step(loss, (x, y))
        opt.step()
        change(step, model)
    mon.finish()
    monkeypatch.undo()
    assert not mon.skipped and not mon.notes
    return {k: [(s, float.hex(v)) for s, v in vals] for k, vals in mon.history.items()}, len(
        builds)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("every", [1, 3])
def test_kept_plans_record_the_bits_of_no_kept_state(monkeypatch, dtype, every):
    kept, kept_builds = run(dtype, every, True, monkeypatch)
    fresh, fresh_builds = run(dtype, every, False, monkeypatch)
    measured = len(kept["grad_norm"])
    assert fresh_builds == measured  # one plan a step without the kept state
    assert kept_builds <= fresh_builds  # each change here busts the plans (see below)
    assert list(kept) == list(fresh)  # same names, in the same order
    assert kept == fresh
    assert "rotation/2.weight" in kept and "update_ratio/2.bias" in kept
    if every == 1:  # the added parameter, from the step after its first snapshot
        assert [s for s, _ in kept["update_ratio/2.scale"]] == [13]
    assert [s for s, _ in kept["grad_norm/0.weight"]] == [
        s for s in range(14) if s % every == 0 and s not in (8, 9)]  # frozen at 8 and 9


@pytest.mark.parametrize(("every", "plans"), [(1, 3), (3, 2)])
def test_plans_are_reused_while_nothing_changes(monkeypatch, every, plans):
    """The first step's plan (no previous parameters), then one per snapshot buffer (two
    alternate at cadence 1)."""
    history, builds = run(torch.float32, every, True, monkeypatch, change=lambda *a: None)
    assert len(history["grad_norm"]) == len(range(0, 14, every)) and builds == plans


def train(model: nn.Module, steps: int = 3) -> Monitor:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes("grad-norm,update-ratio", every=1))
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x, y = torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        mon.step(F.cross_entropy(model(x), y).detach(), (x, y))
        opt.step()
    mon.finish()
    return mon


def test_the_second_snapshot_buffer_only_when_the_fused_pass_takes_the_parameters():
    torch.manual_seed(0)
    plain = train(nn.Linear(4, 3))
    assert plain._slots[0] is not None and plain._slots[1] is not None  # two alternate
    odd = nn.Linear(4, 3)
    odd.weight = nn.Parameter(torch.randn(3, 4).t().contiguous().t())  # not contiguous
    assert not odd.weight.is_contiguous()
    mon = train(odd)
    assert mon._slots[1] is None  # one buffer, copied after the probes
    assert len(mon.history["update_ratio"]) == 2


def test_norm_probes_skip_the_generator_savepoint():
    probes = build_probes("economy", every=1)
    ctx = type("Ctx", (), {"generator": torch.Generator(), "cache": {}, "run_cache": {}})()
    saved = {p.name: _Savepoint(p, ctx).rng is not None for p in probes}
    assert saved == {"grad-norm": False, "rotation": False, "update-ratio": False,
                     "grad-noise": False}
