import math
import multiprocessing as mp
import sqlite3

import numpy as np
import pytest

from trainlab.errors import TrainlabError
from trainlab.store import RunStore


def test_roundtrip_metrics_nan_and_order(tmp_path):
    store = RunStore(tmp_path)
    rid = store.create_run({"a": 1, "x": float("inf")}, name="r", seed=3)
    store.log_metrics(rid, [(2, "loss", 0.5), (0, "loss", 1.0), (1, "loss", float("nan")),
                            (0, "acc", 0.1)])
    m = store.metrics(rid)
    assert list(m["loss"][0]) == [0, 1, 2]
    assert m["loss"][1][0] == 1.0 and math.isnan(m["loss"][1][1]) and m["loss"][1][2] == 0.5
    rec = store.get_run(rid)
    assert rec.status == "running" and rec.seed == 3 and rec.config["x"] == "inf"
    store.set_status(rid, "completed", {"final": 0.5})
    assert store.get_run(rid).summary == {"final": 0.5}
    with pytest.raises(ValueError, match="status"):
        store.set_status(rid, "bogus")


def test_resolve_prefix_name_latest_and_errors(tmp_path):
    store = RunStore(tmp_path)
    a = store.create_run({}, name="alpha")
    b = store.create_run({}, name="beta")
    assert store.resolve(a) == a and store.resolve("beta") == b and store.resolve("latest") == b
    assert store.resolve(a[:-2]) == a  # a unique prefix
    with pytest.raises(TrainlabError, match="no run"):
        store.resolve("nothing-like-this")


def test_truncate_and_remove(tmp_path):
    store = RunStore(tmp_path)
    rid = store.create_run({})
    store.log_metrics(rid, [(s, "loss", float(s)) for s in range(10)])
    store.truncate_metrics(rid, 5)
    assert list(store.metrics(rid)["loss"][0]) == [0, 1, 2, 3, 4]
    (store.artifact_dir(rid) / "f.txt").write_text("x")
    store.add_artifact(rid, "f", store.artifact_dir(rid) / "f.txt")
    assert store.artifact(rid, "f").read_text() == "x"
    store.remove(rid)
    assert store.list_runs() == [] and not (tmp_path / "artifacts" / rid).exists()


def test_foreign_schema_version_raises(tmp_path):
    conn = sqlite3.connect(tmp_path / "runs.sqlite")
    conn.execute("CREATE TABLE runs (id TEXT)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(TrainlabError, match="schema version 99"):
        RunStore(tmp_path)


def _writer(args):
    root, run_id, worker = args
    store = RunStore(root)
    for chunk in range(20):  # 20 transactions of 500 rows = 10,000 metrics
        store.log_metrics(run_id, [(chunk * 500 + i, f"w{worker}", float(i))
                                   for i in range(500)])
    store.close()
    return worker


@pytest.mark.slow
def test_four_processes_writing_10000_metrics_each_lose_nothing(tmp_path):
    store = RunStore(tmp_path)
    rid = store.create_run({})
    with mp.get_context("spawn").Pool(4) as pool:
        assert sorted(pool.map(_writer, [(str(tmp_path), rid, w) for w in range(4)])) == [
            0, 1, 2, 3]
    assert store.count_metrics(rid) == 40_000
    m = store.metrics(rid)
    for w in range(4):
        steps, values = m[f"w{w}"]
        assert np.array_equal(steps, np.arange(10_000))
        assert np.array_equal(values, np.tile(np.arange(500.0), 20))


def test_resolve_treats_underscore_and_percent_literally(tmp_path):
    store = RunStore(tmp_path)
    a = store.create_run({}, name="a")
    with pytest.raises(TrainlabError):
        store.resolve(a[:4] + "_")  # '_' is not a wildcard
    with pytest.raises(TrainlabError):
        store.resolve("%")
    assert store.resolve(a[:10]) == a
