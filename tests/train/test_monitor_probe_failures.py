"""A probe never stops the training: what it could not measure is recorded with its reason,
warned about once per run, kept in the run record and shown in the report."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError
from trainlab.probes import PROBES, Probe, ProbeContext
from trainlab.report import write_run_report
from trainlab.store import RunStore
from trainlab.train import Monitor


class Boom(Probe):
    name = "boom"

    def __init__(self, error: type[Exception], every: int = 1):
        super().__init__(every)
        self.error = error

    def measure(self, ctx):
        raise self.error("cannot measure this model\nsecond line")


class Quiet(Probe):
    name = "quiet"

    def measure(self, ctx):
        return ctx.skip(self.name, "nothing to measure here")


class Partial(Probe):
    name = "partial"

    def measure(self, ctx):
        ctx.note(self.name, "measured with a fallback")
        return {"partial": 1.0}


def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    x, y = torch.randn(6, 4), torch.randint(0, 3, (6,))
    return model, torch.optim.SGD(model.parameters(), lr=0.1), x, y


def loop(mon: Monitor, model, opt, x, y, steps: int = 3) -> None:
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        mon.step(loss, (x, y))
        opt.step()


@pytest.mark.parametrize("error", [ConfigError, TypeError, RuntimeError, NotImplementedError])
def test_a_failing_probe_is_recorded_once_and_the_others_go_on(error, tmp_path, caplog):
    model, opt, x, y = setup()
    store = RunStore(tmp_path)
    probes = [Boom(error), PROBES.get("grad-norm")(), Quiet(), Partial()]
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, probes=probes,
                      store=store)
        loop(mon, model, opt, x, y)
        summary = mon.finish()
    assert [s for s, _ in mon.history["grad_norm"]] == [0, 1, 2]
    assert [s for s, _ in mon.history["partial"]] == [0, 1, 2]
    assert mon.skipped["boom"] == (f"{error.__name__}: cannot measure this model "
                                   "(first at step 0)")
    assert mon.skipped["quiet"] == "nothing to measure here (first at step 0)"
    assert mon.notes == {"partial": "measured with a fallback (first at step 0)"}
    warnings = [r.getMessage() for r in caplog.records if r.name == "trainlab"]
    for name in ("boom", "quiet", "partial"):
        assert sum(f"probe {name!r}" in w for w in warnings) == 1
    record = store.get_run(mon.run_id)
    assert record.summary["skipped_probes"] == summary["skipped_probes"] == mon.skipped
    assert record.summary["probe_notes"] == mon.notes
    if error is ConfigError:  # the report (matplotlib: slow) once
        html = write_run_report(store, mon.run_id).read_text()
        assert "Probes that did not measure everything" in html
        assert "cannot measure this model" in html and "nothing to measure here" in html


def test_on_probe_error_raise_propagates_and_bad_values_are_rejected():
    model, opt, x, y = setup()
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, probes=[Boom(TypeError)],
                  on_probe_error="raise")
    with pytest.raises(TypeError, match="cannot measure"):
        loop(mon, model, opt, x, y, steps=1)
    with pytest.raises(ConfigError, match="on_probe_error.*'record', 'raise'"):
        Monitor(model, loss_fn=F.cross_entropy, probes=[], on_probe_error="ignore")


def test_the_record_survives_a_checkpoint_and_is_not_warned_again(caplog):
    model, opt, x, y = setup()
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, probes=[Boom(RuntimeError)])
    loop(mon, model, opt, x, y, steps=1)
    state = mon.state_dict()
    resumed = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                      probes=[Boom(RuntimeError)])
    resumed.load_state_dict(state)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        loop(resumed, model, opt, x, y, steps=2)
    assert resumed.skipped == mon.skipped
    assert not [r for r in caplog.records if r.name == "trainlab"]


def test_a_skip_outside_a_monitor_is_logged(caplog):
    model, _, x, y = setup()
    ctx = ProbeContext(step=4, model=model, loss_fn=F.cross_entropy, batch=(x, y))
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        assert Quiet().measure(ctx) == {}
    assert ctx.notes == {"quiet": "nothing to measure here"}
    assert "probe 'quiet' at step 4: nothing to measure here" in caplog.text
