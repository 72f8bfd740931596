"""A probe that raises on one data-parallel rank only: no rank hangs in a collective the
failing rank never enters, the probe is skipped on every rank with the failing rank's reason,
and the probes after it still measure the global batch's numbers (the ranks stay in lockstep).

2 processes on gloo, forked; the ``ranks`` fixture fails the test after a timeout instead of
hanging."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from trainlab.probes import PROBES, Probe
from trainlab.probes.sharpness import Sharpness
from trainlab.store import RunStore
from trainlab.train import Monitor


class FailsBefore(Probe):
    """Raises on rank 1 before its first collective, which rank 0 enters."""

    name = "test-fails-before"

    def measure(self, ctx):
        if ctx.dist.rank == 1:
            raise RuntimeError("rank 1 fails before the all-reduce")
        return {"test-fails-before": float(ctx.dist.all_reduce_sum(torch.ones(1)))}


class FailsBetween(Probe):
    """Meets the other rank in one collective, then raises on rank 1 between it and the next
    (a gather rank 0 enters), after drawing from the generator on rank 1 only."""

    name = "test-fails-between"

    def measure(self, ctx):
        total = ctx.dist.all_reduce_sum(torch.ones(1))
        if ctx.dist.rank == 1:
            torch.randn(5, generator=ctx.generator)  # rolled back: ranks stay in lockstep
            raise ValueError("rank 1 fails between the all-reduce and the gather")
        gathered = ctx.dist.all_gather_cat(torch.ones(2))
        return {"test-fails-between": float(total + gathered.sum())}


class Measures(Probe):
    """Makes the same two collectives on both ranks: measured."""

    name = "test-measures"

    def measure(self, ctx):
        total = ctx.dist.all_reduce_sum(torch.full((1,), float(ctx.dist.rank + 1)))
        return {"test-measures": float(ctx.dist.all_gather_cat(total).sum())}


def _data():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    g = torch.Generator().manual_seed(1)
    return net, torch.randn(8, 3, generator=g), torch.randint(0, 2, (8,), generator=g)


def _rank(root: str, results) -> None:
    for cls in (FailsBefore, FailsBetween, Measures):
        PROBES.register(cls.name, cls, ddp="reduced", metrics=(cls.name,),
                        summary="a test probe (this test's processes only)")
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("trainlab").addHandler(handler)
    rank = dist.get_rank()
    net, x, y = _data()
    xs, ys = x[4 * rank:4 * rank + 4], y[4 * rank:4 * rank + 4]
    probes = [FailsBefore(), FailsBetween(), Measures(), Sharpness()]
    mon = Monitor(nn.parallel.DistributedDataParallel(net), loss_fn=F.cross_entropy,
                  probes=probes, store=RunStore(root), every=1)
    for _ in range(2):  # two steps at the same parameters: warm-started sharpness
        net.zero_grad()
        loss = F.cross_entropy(mon.model(xs), ys)
        loss.backward()
        mon.step(loss, (xs, ys))
    summary = mon.finish()
    results.put((rank, summary, {k: [v for _, v in h] for k, h in mon.history.items()},
                 [m for m in messages if "test-fails" in m], mon.run_id))


def test_a_probe_failing_on_one_rank_is_skipped_on_every_rank(tmp_path, ranks):
    results = mp.get_context("fork").SimpleQueue()
    ranks(_rank, str(tmp_path), results, timeout=60)
    (_, s0, h0, msgs0, run0), (_, s1, h1, msgs1, _) = sorted(results.get() for _ in range(2))
    record = RunStore(tmp_path).get_run(run0).summary
    for summary in (record, s0, s1):  # the same reason on both ranks and in the run record
        before = summary["skipped_probes"]["test-fails-before"]
        between = summary["skipped_probes"]["test-fails-between"]
        assert "RuntimeError: rank 1 fails before the all-reduce" in before
        assert "ValueError: rank 1 fails between" in between
        assert "raised on rank 1 of 2" in before and "skipped on every rank" in between
        assert "first at step 0" in before
    for history in (h0, h1):
        assert "test-fails-before" not in history and "test-fails-between" not in history
        assert history["test-measures"] == [6.0, 6.0]  # (1 + 2) on each of 2 ranks, summed
    # one warning per probe and run, on each rank
    assert sorted(m.split("'")[1] for m in msgs0) == ["test-fails-before", "test-fails-between"]
    assert len(msgs1) == 2
    # the generator drawn on rank 1 only was rolled back: sharpness (random Lanczos starts)
    # is the single process's on the global batch at both steps
    net, x, y = _data()
    ref = Monitor(net, loss_fn=F.cross_entropy, probes=[Sharpness()], every=1)
    for _ in range(2):
        net.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        ref.step(loss, (x, y))
    want = [v for _, v in ref.history["sharpness"]]
    assert h0["sharpness"] == h1["sharpness"]
    assert h0["sharpness"] == pytest.approx(want, rel=1e-5)


class Interrupted(Probe):
    name = "test-interrupted"

    def measure(self, ctx):
        if ctx.dist.rank == 1:
            raise KeyboardInterrupt
        return {"test-interrupted": float(ctx.dist.all_reduce_sum(torch.ones(1)))}


def _fatal_rank(results) -> None:
    PROBES.register(Interrupted.name, Interrupted, ddp="reduced", metrics=(Interrupted.name,),
                    summary="a test probe (this test's processes only)")
    net, x, y = _data()
    mon = Monitor(nn.parallel.DistributedDataParallel(net), loss_fn=F.cross_entropy,
                  probes=[Interrupted()], every=1)
    loss = F.cross_entropy(mon.model(x), y)
    loss.backward()
    try:
        mon.step(loss, (x, y))
    except BaseException as exc:  # noqa: BLE001  (what each rank raised is the result)
        results.put((dist.get_rank(), type(exc).__name__, str(exc)))
    else:
        results.put((dist.get_rank(), "nothing raised", ""))


def test_an_error_that_stops_one_rank_stops_every_rank(ranks):
    results = mp.get_context("fork").SimpleQueue()
    ranks(_fatal_rank, results, timeout=60)
    (_, t0, m0), (_, t1, _) = sorted(results.get() for _ in range(2))
    assert t1 == "KeyboardInterrupt"  # rank 1's own error, after the ranks agreed
    assert t0 == "TrainlabError" and "raised on rank 1" in m0 and "KeyboardInterrupt" in m0
