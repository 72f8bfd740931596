"""Time-based checkpoints and metric flushes, and what a write error leaves behind."""

import errno
import os

import pytest
import torch

from trainlab.errors import ConfigError, TrainlabError
from trainlab.store import RunStore
from trainlab.train import Monitor, RunConfig, Trainer
from trainlab.train.checkpoint import has_checkpoint, load_checkpoint


def _cfg(**kw) -> RunConfig:
    base = dict(task="teacher-linear", task_params={"n_train": 32, "n_test": 8},
                model="deep-linear", model_params={"width": 4}, optim="sgd", lr=0.01,
                schedule="constant", schedule_params={}, steps=6, batch_size=8,
                probes="grad-norm", every=2)
    return RunConfig(**{**base, **kw})


def test_checkpoints_are_written_on_a_time_basis(tmp_path):
    store = RunStore(tmp_path)
    quick = Trainer(_cfg(checkpoint_seconds=1e-9), store=store, report=False).run()
    assert load_checkpoint(store, quick.run_id)["step"] == 6  # after the last update
    slow = Trainer(_cfg(), store=store, report=False).run()  # default: every 300 s
    assert not has_checkpoint(store, slow.run_id)
    files = list((tmp_path / "artifacts" / quick.run_id).iterdir())
    assert [f.name.startswith("checkpoint-") for f in files] == [True]  # old ones removed


@pytest.mark.parametrize("seconds,expected", [(0.0, 3), (1e9, 0)])
def test_metrics_are_flushed_on_a_time_basis(tmp_path, seconds, expected):
    store = RunStore(tmp_path)
    model = torch.nn.Linear(2, 1)
    mon = Monitor(model, loss_fn=torch.nn.functional.mse_loss, probes="none", store=store,
                  flush_every=10**9, flush_seconds=seconds)
    mon.step(torch.tensor(1.0))
    mon.step(torch.tensor(0.5))
    mon.step(torch.tensor(0.25))
    assert store.count_metrics(mon.run_id) == expected
    mon.finish()
    assert store.count_metrics(mon.run_id) == 3


def test_a_full_disk_fails_the_run_with_the_reason_and_keeps_what_was_written(
        tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    cfg = _cfg(steps=20, checkpoint_every=5, flush_seconds=0.0)
    real_fsync, calls = os.fsync, []

    def fsync(fd):  # the first checkpoint goes through, the second finds the disk full
        calls.append(fd)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr("trainlab.store.store.os.fsync", fsync)
    with pytest.raises(TrainlabError, match="No space left on device"):
        Trainer(cfg, store=store, report=False).run()
    (run,) = store.list_runs()
    assert run.status == "failed" and "No space left" in run.summary["error"]
    assert run.lease is None  # not `running` forever
    assert not [p for p in (tmp_path / "artifacts" / run.id).iterdir()
                if p.name.endswith(".tmp")]
    assert load_checkpoint(store, run.id)["step"] == 5  # the first checkpoint is kept
    assert store.count_metrics(run.id) >= 2 * 10  # metrics up to the failure are kept
    monkeypatch.setattr("trainlab.store.store.os.fsync", real_fsync)
    resumed = Trainer.resume(run.id, store=store, report=False).run()
    assert resumed.status == "completed"


def test_an_unwritable_artifacts_folder_is_found_before_training(tmp_path):
    store = RunStore(tmp_path)
    (tmp_path / "artifacts").write_text("a file where the folder should be")
    with pytest.raises(TrainlabError, match="not writable"):
        Trainer(_cfg(), store=store, report=False).run()
    assert store.list_runs() == []  # no run was created


def test_resume_removes_partial_files_and_orphan_checkpoints(tmp_path):
    store = RunStore(tmp_path)
    run_id = Trainer(_cfg(steps=10), store=store, report=False).run(stop_at=4).run_id
    folder = tmp_path / "artifacts" / run_id
    kept = store.artifact(run_id, "checkpoint")
    (folder / ".checkpoint-000000009-abcdef.pt.999.tmp").write_bytes(b"partial")
    (folder / "checkpoint-000000007-abcdef.pt").write_bytes(b"written, never recorded")
    resumed = Trainer.resume(run_id, store=store, report=False)
    assert resumed.run(stop_at=6).status == "interrupted"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [store.artifact(run_id, "checkpoint").name] and kept.name not in names


def test_monitor_rejects_parameters_of_probes_it_does_not_run():
    with pytest.raises(ConfigError, match="'sharpness', which is not a probe"):
        Monitor(torch.nn.Linear(2, 1), loss_fn=torch.nn.functional.mse_loss,
                probes="grad-norm", probe_params={"sharpness": {"max_iter": 3}})
