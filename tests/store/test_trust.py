"""The store refuses what it cannot trust: forged or corrupted checkpoints, run ids and
artifact paths that would reach outside the store."""

import hashlib
import io
import os
import random
import sqlite3

import pytest
import torch

from trainlab.cli import main
from trainlab.errors import TrainlabError
from trainlab.store import RunStore, check_run_id
from trainlab.train import RunConfig, Trainer


def _interrupted_run(root) -> tuple[RunStore, str]:
    cfg = RunConfig(task="teacher-linear", task_params={"n_train": 32, "n_test": 8},
                    model="deep-linear", model_params={"width": 4}, optim="sgd", lr=0.01,
                    schedule="constant", schedule_params={}, steps=6, batch_size=8,
                    probes="grad-norm", every=2)
    store = RunStore(root)
    result = Trainer(cfg, store=store, report=False).run(stop_at=3)
    assert result.status == "interrupted"
    return store, result.run_id


class _Payload:
    """Unpickling this runs a shell command (here: one that creates a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _set_checksum(store: RunStore, run_id: str, data: bytes) -> None:
    conn = sqlite3.connect(store.db_path)
    conn.execute("UPDATE artifacts SET sha256=? WHERE run_id=? AND name='checkpoint'",
                 (hashlib.sha256(data).hexdigest(), run_id))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("forge_checksum", [False, True])
def test_a_pickle_that_runs_a_command_is_refused(tmp_path, forge_checksum):
    store, run_id = _interrupted_run(tmp_path / "store")
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"step": 1, "x": _Payload(marker)}, buf)
    store.artifact(run_id, "checkpoint").write_bytes(buf.getvalue())
    if forge_checksum:  # an attacker who can also write the database
        _set_checksum(store, run_id, buf.getvalue())
    with pytest.raises(TrainlabError, match="checksum" if not forge_checksum else "safely"):
        Trainer.resume(run_id, store=store, report=False)
    assert not marker.exists()
    assert main(["run", "--resume", run_id, "--store", str(store.root), "-q"]) == 2
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["flip64", "truncate", "append"])
def test_corrupted_checkpoints_are_refused(tmp_path, damage, capsys):
    store, run_id = _interrupted_run(tmp_path)
    path = store.artifact(run_id, "checkpoint")
    data = bytearray(path.read_bytes())
    if damage == "flip64":
        rng = random.Random(0)
        for i in rng.sample(range(len(data)), 64):
            data[i] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data += b"\0" * 16
    path.write_bytes(bytes(data))
    assert main(["run", "--resume", run_id, "--store", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checksum" in err and "Traceback" not in err
    assert store.get_run(run_id).status == "interrupted"  # nothing was run or recorded


def test_an_intact_checkpoint_still_resumes(tmp_path):
    store, run_id = _interrupted_run(tmp_path)
    assert Trainer.resume(run_id, store=store, report=False).run().status == "completed"


def _insert_row(store: RunStore, run_id: str, created: float = 1e12) -> None:
    conn = sqlite3.connect(store.db_path)
    conn.execute("INSERT INTO runs (id, name, config, status, seed, created, updated, versions)"
                 " VALUES (?, 'evil', '{}', 'completed', 0, ?, ?, '{}')",
                 (run_id, created, created))
    conn.commit()
    conn.close()


def test_a_run_id_with_a_path_cannot_make_rm_delete_outside_the_store(tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    store = RunStore(tmp_path / "a" / "store")
    _insert_row(store, "../../victim")  # artifacts/../../victim is tmp_path/a/victim...
    _insert_row(store, "../../../victim", created=2e12)  # ... and this one is tmp_path/victim
    assert main(["runs", "rm", "latest", "--store", str(store.root)]) == 2
    assert "invalid run id" in capsys.readouterr().err
    assert (victim / "precious.txt").read_text() == "keep me"
    for bad in ("../../../victim", "", "/", "20260101-000000-abcdeg", "x" * 300):
        with pytest.raises(TrainlabError):
            store.remove(bad)
        with pytest.raises(TrainlabError):
            store.get_run(bad)
        with pytest.raises(TrainlabError):
            store.log_metrics(bad, [(0, "loss", 1.0)])
    assert (victim / "precious.txt").exists()


def test_run_ids_the_store_generates_pass_the_check(tmp_path):
    store = RunStore(tmp_path)
    rid = store.create_run({})
    assert check_run_id(rid) == rid and store.resolve(rid) == rid


def test_artifact_paths_outside_the_run_folder_are_refused(tmp_path):
    store = RunStore(tmp_path / "store")
    rid = store.create_run({})
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    conn = sqlite3.connect(store.db_path)
    for name, rel in [("a", "../secret.txt"), ("b", str(outside)),
                      ("c", f"artifacts/{rid}/../../../secret.txt")]:
        conn.execute("INSERT INTO artifacts (run_id, name, path) VALUES (?,?,?)", (rid, name, rel))
    conn.commit()
    conn.close()
    for name in "abc":
        with pytest.raises(TrainlabError, match="outside"):
            store.artifact(rid, name)
        with pytest.raises(TrainlabError, match="outside"):
            store.read_artifact(rid, name)
    with pytest.raises(TrainlabError, match="outside"):
        store.add_artifact(rid, "d", outside)
    assert outside.read_text() == "secret"


def test_a_symlinked_run_folder_is_not_followed_by_rm(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "f").write_text("x")
    store = RunStore(tmp_path / "store")
    rid = store.create_run({}, own=False)
    (store.root / "artifacts").mkdir()
    (store.root / "artifacts" / rid).symlink_to(victim)
    with pytest.raises(TrainlabError, match="outside"):
        store.remove(rid)
    assert (victim / "f").exists()


def test_a_checkpoint_without_a_recorded_checksum_is_refused(tmp_path):
    store, run_id = _interrupted_run(tmp_path)
    conn = sqlite3.connect(store.db_path)
    conn.execute("UPDATE artifacts SET sha256=NULL WHERE run_id=?", (run_id,))
    conn.commit()
    conn.close()
    with pytest.raises(TrainlabError, match="no recorded checksum"):
        Trainer.resume(run_id, store=store, report=False)
