"""One owner per run: leases, take-over, fencing, `crashed`, unique metric rows, migration."""

import sqlite3
import subprocess
import sys
import time

import pytest

from trainlab.errors import TrainlabError
from trainlab.store import LeaseLostError, RunOwnedError, RunStore
from trainlab.store.lease import STALE_AFTER
from trainlab.train import RunConfig, Trainer


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _set_lease(store: RunStore, run_id: str, pid: int, host: str, age: float) -> None:
    conn = sqlite3.connect(store.db_path)
    conn.execute("INSERT OR REPLACE INTO leases (run_id, token, pid, host, heartbeat) "
                 "VALUES (?, 'other', ?, ?, ?)", (run_id, pid, host, time.time() - age))
    conn.commit()
    conn.close()


def _tiny() -> RunConfig:
    return RunConfig(task="teacher-linear", task_params={"n_train": 32, "n_test": 8},
                     model="deep-linear", model_params={"width": 4}, optim="sgd", lr=0.01,
                     schedule="constant", schedule_params={}, steps=6, batch_size=8,
                     probes="grad-norm", every=2)


def test_a_second_resume_of_an_owned_run_is_refused(tmp_path):
    store = RunStore(tmp_path)
    run_id = Trainer(_tiny(), store=store, report=False).run(stop_at=3).run_id
    first = Trainer.resume(run_id, store=store, report=False)
    with pytest.raises(RunOwnedError, match=r"owned by another process \(pid \d+"):
        Trainer.resume(run_id, store=RunStore(tmp_path), report=False)
    assert first.run().status == "completed"
    assert store.count_metrics(run_id) == len(
        {(s, n) for n, (steps, _) in store.metrics(run_id).items() for s in steps})


def test_the_lease_of_a_dead_owner_on_this_host_is_taken_over(tmp_path):
    store = RunStore(tmp_path)
    rid = store.create_run({}, own=False)
    from trainlab.store.lease import HOST

    _set_lease(store, rid, _dead_pid(), HOST, age=1.0)
    assert store.get_run(rid).status == "crashed"  # dead owner: crashed at once
    store.acquire(rid)
    assert store.get_run(rid).status == "running"
    store.set_status(rid, "completed")
    assert store.get_run(rid).lease is None  # a final status ends the lease


def test_another_hosts_stale_lease_needs_take_over_and_fences_the_old_owner(tmp_path):
    old = RunStore(tmp_path)
    rid = old.create_run({})  # owned by `old`
    new = RunStore(tmp_path)
    with pytest.raises(RunOwnedError, match="wait for it"):
        new.acquire(rid)
    _set_lease(new, rid, 1, "another-host", age=0.0)
    with pytest.raises(RunOwnedError, match="wait for it"):  # fresh heartbeat
        new.acquire(rid)
    _set_lease(new, rid, 1, "another-host", age=STALE_AFTER + 5)
    assert new.get_run(rid).status == "crashed"
    with pytest.raises(RunOwnedError, match="--take-over"):
        new.acquire(rid)
    new.acquire(rid, take_over=True)
    with pytest.raises(LeaseLostError):  # the old owner may write nothing more
        old.log_metrics(rid, [(0, "loss", 1.0)])
    with pytest.raises(LeaseLostError):
        old.set_status(rid, "completed")
    new.log_metrics(rid, [(0, "loss", 1.0)])
    assert new.count_metrics(rid) == 1 and new.get_run(rid).status == "running"


def test_metric_rows_are_unique_per_run_step_name(tmp_path):
    store = RunStore(tmp_path)
    rid = store.create_run({})
    store.log_metrics(rid, [(0, "loss", 1.0), (1, "loss", 0.5)])
    with pytest.raises(TrainlabError, match="already recorded"):
        store.log_metrics(rid, [(2, "loss", 0.1), (1, "loss", 0.4)])
    assert store.count_metrics(rid) == 2  # the whole batch was refused
    conn = sqlite3.connect(store.db_path)
    with pytest.raises(sqlite3.IntegrityError):  # the schema itself refuses
        conn.execute("INSERT INTO metrics VALUES (?, 0, 'loss', 3.0)", (rid,))


V1 = """
CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, config TEXT NOT NULL,
  status TEXT NOT NULL, seed INTEGER, created REAL NOT NULL, updated REAL NOT NULL,
  versions TEXT NOT NULL, summary TEXT NOT NULL DEFAULT '{}');
CREATE TABLE metrics (run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL, name TEXT NOT NULL, value REAL);
CREATE INDEX metrics_run_name_step ON metrics(run_id, name, step);
CREATE TABLE artifacts (run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (run_id, name));
"""


def test_a_version_1_store_is_migrated_keeping_the_last_duplicate(tmp_path, caplog):
    conn = sqlite3.connect(tmp_path / "runs.sqlite")
    conn.executescript(V1)
    rid = "20260101-000000-abcdef"
    conn.execute("INSERT INTO runs VALUES (?, 'r', '{}', 'completed', 0, 1, 1, '{}', '{}')",
                 (rid,))
    conn.executemany("INSERT INTO metrics VALUES (?, ?, 'loss', ?)",
                     [(rid, 0, 1.0), (rid, 1, 0.9), (rid, 1, 0.8), (rid, 2, 0.7), (rid, 1, 0.6)])
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = RunStore(tmp_path)
    assert "migrated from schema version 1 to 2 (2 duplicate" in caplog.text
    steps, values = store.metrics(rid)["loss"]
    assert list(steps) == [0, 1, 2] and list(values) == [1.0, 0.6, 0.7]
    with pytest.raises(TrainlabError, match="already recorded"):
        store.log_metrics(rid, [(1, "loss", 0.0)])
    assert store.get_run(rid).status == "completed"


def test_a_trainer_whose_run_was_taken_over_stops_and_writes_nothing_more(tmp_path,
                                                                          monkeypatch):
    store, thief = RunStore(tmp_path), RunStore(tmp_path)
    calls = []

    def lease_lost(self, run_id):
        calls.append(run_id)
        if len(calls) == 3:  # another process takes the run over during step 2
            thief.acquire(run_id, take_over=True)
        return len(calls) >= 3

    monkeypatch.setattr(RunStore, "lease_lost", lease_lost)
    with pytest.raises(LeaseLostError, match="taken over"):
        Trainer(_tiny(), store=store, report=False).run()
    (run,) = thief.list_runs()
    assert run.status == "running" and run.lease.pid > 0  # the new owner's, untouched
    assert run.summary == {}  # the old owner recorded no final status
