"""``RunStore.add_finished_run``: a finished run and its artifacts go in at once; a write that
fails anywhere leaves no run, no artifact record and no file."""

from __future__ import annotations

import sqlite3

import pytest

import trainlab.store.store as store_module
from trainlab.errors import ConfigError, TrainlabError
from trainlab.store import RunStore


def _files():
    return {"figure": ("figure.png", b"\x89PNG..."), "data": ("data.json", b'{"x": 1}')}


def _empty(store: RunStore) -> bool:
    rows = store._conn.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]
    folder = store.root / "artifacts"
    return store.list_runs() == [] and rows == 0 and (
        not folder.exists() or not any(folder.iterdir()))


def test_the_run_and_its_artifacts_are_recorded_together(tmp_path):
    store = RunStore(tmp_path)
    rid = store.add_finished_run({"kind": "x"}, status="completed", summary={"v": float("nan")},
                                 files=_files(), name="demo", seed=4)
    rec = store.get_run(rid)
    assert (rec.status, rec.name, rec.seed, rec.summary) == ("completed", "demo", 4,
                                                            {"v": "nan"})
    assert rec.lease is None  # nothing to own: the run is over
    assert store.read_artifact(rid, "data") == b'{"x": 1}'  # checksum verified
    assert store.read_artifact(rid, "figure") == b"\x89PNG..."
    assert store.artifact(rid, "data") == tmp_path / "artifacts" / rid / "data.json"
    store.remove(rid)
    assert _empty(store)


def test_a_failing_file_write_leaves_nothing(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    real, calls = store_module.atomic_write_bytes, []

    def second_fails(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(store_module, "atomic_write_bytes", second_fails)
    with pytest.raises(OSError, match="No space"):
        store.add_finished_run({}, status="completed", summary={}, files=_files())
    assert len(calls) == 2 and calls[0].name == "figure.png"  # the first was written ...
    assert _empty(store)  # ... and removed with the rest


def test_a_failing_transaction_rolls_back_the_run_and_removes_the_files(tmp_path):
    store = RunStore(tmp_path)
    conn = sqlite3.connect(store.db_path)  # the database refuses the second artifact row
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON artifacts WHEN NEW.name = 'data' "
                 "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    conn.commit()
    conn.close()
    with pytest.raises(sqlite3.DatabaseError, match="disk I/O"):
        store.add_finished_run({}, status="failed", summary={"e": 1}, files=_files())
    assert _empty(store)  # the run row and the figure's row were rolled back with it


@pytest.mark.parametrize("filename", ["../escape.json", "a/b.json", ".hidden", ""])
def test_file_names_that_could_leave_the_run_folder_are_refused(tmp_path, filename):
    store = RunStore(tmp_path)
    with pytest.raises(TrainlabError, match="invalid artifact file name"):
        store.add_finished_run({}, status="completed", summary={},
                               files={"data": (filename, b"x")})
    assert _empty(store) and not (tmp_path / "escape.json").exists()


def test_two_artifacts_in_one_file_are_refused(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(TrainlabError, match="once per run"):
        store.add_finished_run({}, status="completed", summary={},
                               files={"a": ("x.json", b"1"), "b": ("x.json", b"2")})
    assert _empty(store)


def test_a_failed_write_never_removes_another_runs_files(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    other = store.add_finished_run({}, status="completed", summary={}, files=_files())
    ids = iter([other, "20000101-000000-abcdef"])  # the first id drawn collides
    monkeypatch.setattr(store_module, "_new_run_id", lambda: next(ids))
    monkeypatch.setattr(store_module, "atomic_write_bytes",
                        lambda path, data: (_ for _ in ()).throw(OSError(28, "disk full")))
    with pytest.raises(OSError, match="disk full"):
        store.add_finished_run({}, status="completed", summary={}, files=_files())
    assert [r.id for r in store.list_runs()] == [other]
    assert store.read_artifact(other, "data") == b'{"x": 1}'


def test_only_a_final_status_is_accepted(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(ConfigError, match="'completed'"):
        store.add_finished_run({}, status="running", summary={})
    assert _empty(store)
