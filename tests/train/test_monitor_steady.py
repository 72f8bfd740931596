"""What the Monitor keeps from one due step to the next to spend less of its own time there
records what working everything out at every step records: the cadences' decisions kept per
residue of the step (``Monitor._cadence``) give the same steps measured, the same calls of
the attached probes' ``arm`` and the same bits, also when a cadence or ``total_steps``
changes mid-run; ``_record`` writes the history, the store's buffer and the sinks as a plain
reading of every value does; the context made without the dataclass's ``__init__`` equals the
constructor's."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import RecordingSink
from torch import nn

from trainlab.probes import ProbeContext, build_probes
from trainlab.probes._probe import Table
from trainlab.train import Monitor
from trainlab.train import monitor as monitor_module


def test_context_made_from_its_fields_equals_the_constructor():
    model = nn.Linear(2, 1)
    fields = {"step": 3, "model": model, "loss_fn": F.mse_loss, "batch": (1, 2),
              "loss": torch.tensor(0.5), "optimizer": None, "lr": 0.1,
              "init_params": {"w": torch.zeros(1)}, "prev_params": None, "task": None,
              "generator": torch.Generator(), "cache": {"params": {}}, "run_cache": {"a": 1},
              "notes": {}, "warn": False, "dist": None}
    assert [f.name for f in dataclasses.fields(ProbeContext)] == list(fields)
    assert not hasattr(ProbeContext, "__post_init__")  # nothing the constructor would run
    made = monitor_module._context(dict(fields))
    assert type(made) is ProbeContext
    assert made == ProbeContext(**fields)
    assert all(getattr(made, name) is value for name, value in fields.items())


def _run(every: dict[str, int], total: int | None, change=None, steps: int = 26,
         cycle_max: int | None = None):
    """A short run of economy probes with their own cadences; returns the history (hex),
    the steps each attached probe was armed for (``arm(True)`` calls, by the step at whose
    end they came) and the monitor."""
    if cycle_max is not None:
        monitor_module.CYCLE_MAX, kept = cycle_max, monitor_module.CYCLE_MAX
    try:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        spec = ",".join(f"{name}@{n}" for name, n in every.items())
        mon = Monitor(net, loss_fn=F.cross_entropy, optimizer=opt,
                      probes=build_probes(spec), total_steps=total, seed=2)
        armed: list[tuple[int, bool]] = []
        for probe, _ in mon._attached:
            arm = probe.arm
            probe.arm = lambda due, arm=arm: (armed.append((mon.step_index, due)), arm(due))[1]
        g = torch.Generator().manual_seed(1)
        batches = [(torch.randn(12, 5, generator=g, dtype=torch.float64),
                    torch.randint(0, 3, (12,), generator=g)) for _ in range(steps)]
        for k, batch in enumerate(batches):
            opt.zero_grad()
            loss = F.cross_entropy(net(batch[0]), batch[1])
            loss.backward()
            mon.step(loss, batch)
            opt.step()
            if change is not None:
                change(k, mon)
        mon.finish()
    finally:
        if cycle_max is not None:
            monitor_module.CYCLE_MAX = kept
    hexed = [(n, [(s, float.hex(v)) for s, v in h]) for n, h in mon.history.items()]
    return hexed, armed, mon


def _changes(k: int, mon: Monitor) -> None:
    if k == 7:
        for probe in mon.probes:
            probe.every = 2 if probe.name == "grad-noise" else 5
    if k == 15:
        mon.total_steps = 19


@pytest.mark.parametrize("total,change", [(None, None), (17, None), (None, _changes)])
@pytest.mark.parametrize("every", [{"grad-norm": 1, "update-ratio": 1, "grad-noise": 1},
                                   {"grad-norm": 2, "update-ratio": 3, "grad-noise": 4}])
def test_kept_cadences_measure_and_arm_as_asking_every_probe(every, total, change):
    kept, kept_armed, mon = _run(every, total, change)
    asked, asked_armed, plain = _run(every, total, change, cycle_max=0)
    assert plain._cadences[1] == 0  # cycle longer than CYCLE_MAX: every probe asked
    assert kept == asked and kept_armed == asked_armed
    assert mon._cadences[1] == math.lcm(*(p.every for p in mon.probes))
    assert 0 < len(mon._cadences[2]) <= mon._cadences[1]
    measured = {s for s, _ in dict(kept)["grad_norm"]}
    if total is not None:
        assert total in measured
    assert len(kept_armed) > 0


def _plain_record(step: int, values: dict, history: dict, rows: list, sinks: list) -> None:
    """The meaning of ``Monitor._record``, written plainly: every named entry read on its
    own, appended in order."""
    items = []
    for name, value in values.items():
        if isinstance(value, Table):
            items += [(n, float(x.item())) for n, x in zip(value.names, value.vector())
                      if n is not None]
        elif isinstance(value, torch.Tensor):
            items.append((name, float(value.item())))
        else:
            items.append((name, float(value)))
    for name, x in items:
        history.setdefault(name, []).append((step, x))
    rows += [(step, n, x) for n, x in items]
    recorded: dict[str, float] = {}
    for name, x in items:
        recorded[name] = x
    sinks.append((step, recorded))


def test_record_writes_what_a_plain_reading_of_every_value_writes(tmp_path):
    from trainlab.store import RunStore

    g = torch.Generator().manual_seed(0)
    table = torch.randn(3, 4, generator=g, dtype=torch.float64)
    table[1, 2] = float("nan")
    steps = [
        {"loss": 0.25, "lr": 1e-3, "t/*": Table(("a", None, "c", "d"), table, 1),
         "u/*": Table(("e", "f", "g", "h"), table, 0), "short/*": Table(("s", "t"), table, 2),
         "v/*": Table(("i", "j"), torch.tensor([1.0, 2.5], dtype=torch.float32)),
         "w/*": Table(("k", None), torch.tensor([3, -4])), "x": torch.tensor(1.0 / 3),
         "y": torch.tensor(0.1, dtype=torch.float16), "z": 2},
        {"loss": float("inf"), "lr": 1e-3, "t/*": Table(("a", None, "c", "d"), table, 2),
         "again/*": Table(("loss", "new"), table, 0), "x": torch.tensor(-0.0)},
    ]
    sink = RecordingSink()
    mon = Monitor(nn.Linear(2, 1), loss_fn=F.mse_loss, probes=[], sinks=[sink],
                  store=RunStore(tmp_path), flush_every=10**6, flush_seconds=1e9)
    history: dict = {}
    rows: list = []
    plain: list = []
    for step, values in enumerate(steps):
        mon._record(step, values)
        _plain_record(step, values, history, rows, plain)

    def hexed(entries):
        return [tuple(float.hex(v) if isinstance(v, float) else v for v in e)
                for e in entries]

    assert list(mon.history) == list(history)
    assert {n: hexed(h) for n, h in mon.history.items()} == {
        n: hexed(h) for n, h in history.items()}
    assert all(type(x) is float for h in mon.history.values() for _, x in h)
    assert hexed(mon._buffer) == hexed(rows)
    assert sink.writes == [(s, [(n, float.hex(x)) for n, x in d.items()]) for s, d in plain]
    mon.detach()  # ("loss" twice at step 1: a store refuses such rows at the flush)


def test_context_cache_computes_each_entry_once_and_params_reads_the_seeded_dict():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model[1].bias.requires_grad_(False)
    ctx = ProbeContext(step=0, model=model, loss_fn=F.mse_loss, batch=(None, None))
    calls: list[int] = []
    first = ctx.cached("k", lambda: calls.append(1) or [len(calls)])
    assert ctx.cached("k", lambda: calls.append(1) or [len(calls)]) is first
    assert first == [1] and calls == [1]
    assert ctx.cached("none", lambda: None) is None
    assert ctx.cached("none", lambda: calls.append(2)) is None and calls == [1]
    with pytest.raises(KeyError, match="inner"):  # an error of fn is fn's
        ctx.cached("bad", lambda: {}["inner"])
    assert "bad" not in ctx.cache
    params = ctx.params()  # made from the model: trainable parameters, detached views
    assert list(params) == ["0.weight", "0.bias", "1.weight"]
    assert all(not v.requires_grad and v.data_ptr() == p.data_ptr()
               for v, p in zip(params.values(), model.parameters()))
    assert ctx.params() is params
    seeded = {"w": torch.zeros(1)}
    assert ProbeContext(step=0, model=model, loss_fn=F.mse_loss, batch=(None, None),
                        cache={"params": seeded}).params() is seeded


@pytest.mark.parametrize("total", [None, 14])
def test_a_due_set_on_an_instance_mid_run_is_followed_at_once(total):
    """A ``due`` of its own set on a probe instance after the cadences' decisions were kept
    (and deleted again later) changes the steps measured from the next step on, on the
    quiet steps too: the same steps as asking every probe at every step."""
    def change(k: int, mon: Monitor) -> None:
        probe = next(p for p in mon.probes if p.name == "grad-norm")
        if k == 4:
            probe.due = lambda step: step % 3 == 1
        if k == 9:
            del probe.due

    def measured(mon: Monitor, name: str) -> list[int]:
        return [s for s, _ in mon.history[name]]

    _, _, mon = _run({"grad-norm": 4, "weight-norm": 8}, total, change, steps=18)
    want = [s for s in range(18) if (s % 4 == 0 if s <= 4 or s >= 10 else s % 3 == 1)
            or s == total]
    assert measured(mon, "grad_norm") == want
    assert measured(mon, "weight_norm") == [s for s in range(18) if s % 8 == 0 or s == total]
