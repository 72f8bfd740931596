"""Processes that open a new store at the same moment (the ranks of a DDP job, parallel
phenomena) all get a working store, created exactly once."""

from __future__ import annotations

import multiprocessing as mp

from trainlab.store import RunStore
from trainlab.store.store import SCHEMA_VERSION


def _open(root: str, barrier, results) -> None:
    barrier.wait()  # every process opens at once
    try:
        with RunStore(root) as store:
            run = store.create_run({"kind": "probe"}, name="x")
            results.put(("ok", run))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(("error", repr(exc)))


def test_simultaneous_opens_of_a_new_store_all_succeed(tmp_path):
    ctx = mp.get_context("fork")
    n = 6
    for trial in range(3):
        root = str(tmp_path / f"store{trial}")
        barrier, results = ctx.Barrier(n), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(root, barrier, results)) for _ in range(n)]
        for p in procs:
            p.start()
        got = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=120)
        assert all(kind == "ok" for kind, _ in got), got
        with RunStore(root) as store:
            assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert len(store.list_runs()) == n
