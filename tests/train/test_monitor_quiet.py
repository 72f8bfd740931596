"""The Monitor's quiet steps (no probe due, no snapshot: only the loss and the lr recorded,
the attached probes left disarmed, see ``Monitor._schedule``) record what a monitor that
works every step out in full records, to the bit and in the same order (history, the
store's rows, the sinks); the steps measured are the due steps, also after a cadence or
``total_steps`` changes mid-run and for a probe with its own ``due``; the kept parameter
snapshot equals the parameters before the update, also after their storage changed; under
data-parallel training (2 processes, gloo) both ranks record the same bits either way."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import RecordingSink
from torch import nn

from trainlab.probes import Probe, build_probes
from trainlab.store import RunStore
from trainlab.train import Monitor


def train_step(mon: Monitor, forward, opt, g: torch.Generator, dtype, rows=slice(None),
               number: bool = False, before_update=None) -> float:
    """One step on a fresh batch of 20 examples (``rows`` of it: this rank's shard), the
    loss handed to the monitor as a tensor or (``number``) a float; ``before_update()`` runs
    between ``mon.step`` and the update. Returns the loss."""
    x = torch.randn(20, 6, generator=g, dtype=dtype)[rows]
    y = torch.randint(0, 4, (20,), generator=g)[rows]
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(forward(x), y)
    loss.backward()
    mon.step(loss.item() if number else loss, (x, y))
    if before_update is not None:
        before_update()
    opt.step()
    return loss.item()


def model(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 9), nn.Tanh(),
                         nn.Linear(9, 4)).to(dtype)


def run(every: int, dtype=torch.float64, steps: int = 35, total: int | None = 33,
        full: bool = False, spec: str = "economy", tmp_path=None, between=None,
        sinks: bool = True, number: bool = False):
    """A short Adam run with the ``spec`` probes every ``every`` steps; ``full``: every
    step worked out in full (no quiet step); ``number``: the loss handed over as a float.
    Returns the monitor, its store's rows (as written, in order) and its sink, which also
    keeps the losses of the loop (``sink.losses``)."""
    net = model(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    store = RunStore(tmp_path) if tmp_path is not None else None
    rows: list = []
    if store is not None:
        log = store.log_metrics
        store.log_metrics = lambda run_id, r: (rows.extend(r), log(run_id, r))[1]
    sink = RecordingSink()
    probes = build_probes(spec, every=every) if isinstance(spec, str) else spec
    mon = Monitor(net, loss_fn=F.cross_entropy, optimizer=opt, probes=probes, seed=3,
                  total_steps=total, store=store, flush_every=5, flush_seconds=1e9,
                  sinks=[sink] if sinks else [])
    if full:
        mon._schedule = lambda start: range(0)
    g = torch.Generator().manual_seed(1)
    for k in range(steps):
        sink.losses.append(train_step(mon, net, opt, g, dtype, number=number))
        if between is not None:
            between(k, mon, net)
    mon.finish()
    return mon, [(s, n, float.hex(v)) for s, n, v in rows], sink


def hexed(mon: Monitor) -> list:
    return [(name, [(s, float.hex(v)) for s, v in h]) for name, h in mon.history.items()]


@pytest.mark.parametrize("store", [False, True])
@pytest.mark.parametrize("number", [False, True])
@pytest.mark.parametrize("every", [3, 16])
def test_quiet_steps_without_sink_record_the_same_bits(every, number, store, tmp_path):
    quick, rows, _ = run(every, torch.float32, sinks=False, number=number,
                         tmp_path=tmp_path / "a" if store else None)
    full, full_rows, _ = run(every, torch.float32, sinks=False, number=number, full=True,
                             tmp_path=tmp_path / "b" if store else None)
    assert hexed(quick) == hexed(full)
    assert rows == full_rows and len(rows) == (sum(map(len, quick.history.values()))
                                               if store else 0)
    assert [s for s, _ in quick.history["lr"]] == list(range(35))
    assert [s for s, _ in quick.history["gns"]] == sorted({k for k in range(35)
                                                           if k % every == 0} | {33})


@pytest.mark.parametrize("every", [1, 3, 16])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_quiet_steps_record_the_numbers_of_full_steps_to_the_bit(every, dtype, tmp_path):
    quick, rows, sink = run(every, dtype, tmp_path=tmp_path / "a")
    full, full_rows, full_sink = run(every, dtype, full=True, tmp_path=tmp_path / "b")
    assert hexed(quick) == hexed(full)  # same names, order, steps and bits
    assert rows == full_rows and len(rows) == sum(len(h) for h in quick.history.values())
    assert sink.writes == full_sink.writes
    assert quick.summary()["steps"] == full.summary()["steps"]
    # the loss and lr at every step; each probe at its due steps and the last one only
    assert quick.history["loss"] == list(enumerate(sink.losses))  # as the loop read them
    assert quick.history["lr"] == [(k, 1e-2) for k in range(35)]
    due = sorted({k for k in range(35) if k % every == 0} | {33})
    for name in ("grad_norm", "distance", "gns"):
        assert [s for s, _ in quick.history[name]] == due, name
    assert [s for s, _ in quick.history["update_ratio"]] == [k for k in due if k > 0]


def test_quiet_steps_leave_the_model_without_hooks_and_the_capture_disarmed():
    seen = []

    def look(k, mon, net):  # after the update of step k: the hooks of step k + 1's pass
        hooked = [bool(m._forward_hooks) for m in net if isinstance(m, nn.Linear)]
        seen.append((k + 1, all(hooked), any(hooked)))

    mon, _, _ = run(8, steps=20, total=None, between=look)
    for step, all_hooked, any_hooked in seen:
        if step % 8 == 0:
            assert all_hooked, step
        else:
            assert not any_hooked, step
    assert [s for s, _ in mon.history["gns"]] == [0, 8, 16]


def test_changed_cadence_or_last_step_is_followed_at_the_next_step():
    def change(k, mon, net):
        if k == 4:
            for p in mon.probes:
                p.every = 3  # from 10: due at 6, 9, 12, ...
        if k == 14:
            mon.total_steps = 17

    mon, _, _ = run(10, steps=20, total=None, between=change)
    full, _, _ = run(10, steps=20, total=None, between=change, full=True)
    assert hexed(mon) == hexed(full)
    assert [s for s, _ in mon.history["grad_norm"]] == [0, 6, 9, 12, 15, 17, 18]
    assert [s for s, _ in mon.history["update_ratio"]] == [6, 9, 12, 15, 17, 18]


class Primes(Probe):
    """Due at prime steps (its own ``due``): the monitor cannot skip ahead."""

    name = "primes"

    def due(self, step):
        return step > 1 and all(step % d for d in range(2, step))

    def measure(self, ctx):
        return {"primes/step": float(ctx.step)}


def test_a_probe_with_its_own_due_is_measured_at_its_steps():
    probes = [Primes(every=50), *build_probes("grad-norm,update-ratio", every=7)]
    mon, _, _ = run(7, spec=probes, steps=20, total=None)
    assert [s for s, _ in mon.history["primes/step"]] == [2, 3, 5, 7, 11, 13, 17, 19]
    assert [s for s, _ in mon.history["grad_norm"]] == [0, 7, 14]
    assert [s for s, _ in mon.history["update_ratio"]] == [7, 14]


def test_kept_snapshot_equals_the_parameters_before_the_update():
    net = model(torch.float64)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    mon = Monitor(net, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes("update-ratio", every=5))
    g = torch.Generator().manual_seed(1)
    checked, before = [], {}
    for k in range(16):
        def look(k=k):  # after mon.step, before the update
            nonlocal before
            now = {n: p.detach().clone() for n, p in net.named_parameters()}
            if mon._prev is not None:  # taken at this step: the parameters before the update
                assert mon._prev.keys() == now.keys()
                assert all(torch.equal(mon._prev[n], now[n]) for n in now)
                checked.append(k)
            if k % 5 == 0 and k:  # update_norm: the distance from the kept snapshot
                dist = torch.stack([(now[n] - before[n]).norm() for n in now]).norm()
                assert mon.last("update_norm") == pytest.approx(dist.item(), rel=1e-12)
            before = now

        train_step(mon, net, opt, g, torch.float64, before_update=look)
        if k == 8:  # new storage for every parameter: the next snapshot must follow it
            with torch.no_grad():
                for p in net.parameters():
                    p.data = p.data.clone() * 0.5
    mon.finish()
    assert checked == [4, 9, 14]
    assert [s for s, _ in mon.history["update_ratio"]] == [5, 10, 15]


def _ddp_rank(results, full: bool) -> None:
    import torch.distributed as dist

    rank = dist.get_rank()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 9), nn.Tanh(), nn.Linear(9, 4)).double()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    ddp = nn.parallel.DistributedDataParallel(net)
    mon = Monitor(ddp, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes("grad-norm,update-ratio,grad-noise", every=4))
    if full:
        mon._schedule = lambda start: range(0)
    g = torch.Generator().manual_seed(1)
    for _ in range(11):
        train_step(mon, ddp, opt, g, torch.float64, rows=slice(10 * rank, 10 * rank + 10))
    mon.finish()
    results.put((rank, full, hexed(mon)))


def test_quiet_steps_under_data_parallel_training_record_the_same_bits(ranks):
    import torch.multiprocessing as mp

    results = mp.get_context("fork").SimpleQueue()
    for full in (False, True):
        ranks(_ddp_rank, results, full, timeout=60)
    got = {(rank, full): h for rank, full, h in (results.get() for _ in range(4))}
    assert got[(0, False)] == got[(0, True)] == got[(1, False)] == got[(1, True)]
    steps = dict(got[(0, False)])
    assert [s for s, _ in steps["loss"]] == list(range(11))
    assert [s for s, _ in steps["grad_norm"]] == [0, 4, 8]
    assert [s for s, _ in steps["update_ratio"]] == [4, 8]
