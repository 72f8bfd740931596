"""Resuming a data-parallel run in data-parallel processes: rank 0 reads the checkpoint and
sends it to the other ranks, each rank takes back its own RNG state, and the resumed run
records the numbers of an uninterrupted data-parallel run, bit for bit.

2 processes on gloo, forked; the ``ranks`` fixture fails the test after a timeout instead of
hanging."""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from trainlab.cli import main
from trainlab.store import RunStore
from trainlab.train import RunConfig, Trainer, distributed


class NoisyNet(nn.Module):
    """A small MLP whose training forward adds noise drawn ``rank + 1`` times from the global
    RNG: the ranks' RNG streams differ, so a rank resumed with another rank's RNG state
    trains differently."""

    def __init__(self, dim: int, outputs: int):
        super().__init__()
        self.a, self.b = nn.Linear(dim, 8), nn.Linear(8, outputs)

    def forward(self, x):
        h = torch.tanh(self.a(x))
        if self.training:
            for _ in range(dist.get_rank() + 1 if dist.is_initialized() else 1):
                noise = torch.randn_like(h)
            h = h + 0.05 * noise
        return self.b(h)


def _config(model: str = "mlp") -> RunConfig:
    return RunConfig(task="gaussian-mixture", task_params={"n_train": 64, "n_test": 16,
                                                           "dim": 5},
                     model=model, model_params={"width": 8} if model == "mlp" else {},
                     optim="sgd", lr=0.3, optim_params={"momentum": 0.9},
                     schedule="constant", schedule_params={}, steps=5, batch_size=8,
                     probes="grad-norm,rotation", every=1)


def _register_noisy() -> None:
    from trainlab.models import MODELS

    MODELS.register("test-noisy-net", lambda shape, outputs: NoisyNet(shape[0], outputs),
                    summary="an MLP with rank-dependent noise (this test's processes only)")


def _train(root: str, model: str, stop_at, results) -> None:
    if model != "mlp":
        _register_noisy()
    result = Trainer(_config(model), store=RunStore(root), report=False).run(stop_at=stop_at)
    results.put((dist.get_rank(), result.status, result.run_id))


def _resume(root: str, run_id: str, results) -> None:
    _register_noisy()
    store = RunStore(root) if dist.get_rank() == 0 else None  # the others need no store
    trainer = Trainer.resume(run_id, store=store, report=False)
    result = trainer.run()
    results.put((dist.get_rank(), result.status, ""))


def _statuses(results, n=2):
    return sorted(results.get() for _ in range(n))


def _assert_same_metrics(store_a, run_a, store_b, run_b, **tol):
    m_a, m_b = store_a.metrics(run_a), store_b.metrics(run_b)
    assert set(m_a) == set(m_b) and "loss" in m_a
    for name in m_a:
        np.testing.assert_array_equal(m_b[name][0], m_a[name][0])
        if tol:
            np.testing.assert_allclose(m_b[name][1], m_a[name][1], err_msg=name, **tol)
        else:
            np.testing.assert_array_equal(m_b[name][1], m_a[name][1], err_msg=name)


def test_a_ddp_run_resumed_in_2_processes_is_the_uninterrupted_ddp_run(tmp_path, ranks):
    q = mp.get_context("fork").SimpleQueue()
    ranks(_train, str(tmp_path / "whole"), "test-noisy-net", None, q, timeout=60)
    (_, whole, run_whole), _ = _statuses(q)
    ranks(_train, str(tmp_path / "cut"), "test-noisy-net", 3, q, timeout=60)
    (_, cut, run_cut), (_, cut1, _) = _statuses(q)
    assert (whole, cut, cut1) == ("completed", "interrupted", "interrupted")
    store = RunStore(tmp_path / "cut")
    from trainlab.train.checkpoint import load_checkpoint

    rngs = load_checkpoint(store, run_cut)["rng_ranks"]
    assert len(rngs) == 2 and not torch.equal(rngs[0], rngs[1])  # the ranks' streams differ
    ranks(_resume, str(tmp_path / "cut"), run_cut, q, timeout=60)
    (_, s0, _), (_, s1, _) = _statuses(q)
    assert s0 == s1 == "completed"
    assert store.get_run(run_cut).summary["world_size"] == 2
    assert len(store.list_runs()) == 1  # rank 1 wrote nothing to the store
    # bit for bit: the same operations in the same order on the same state (rank 1 resumed
    # with rank 0's RNG state would draw other noise)
    _assert_same_metrics(RunStore(tmp_path / "whole"), run_whole, store, run_cut)


def test_cli_nproc_resume_continues_in_2_processes(tmp_path, ranks, monkeypatch):
    q = mp.get_context("fork").SimpleQueue()
    ranks(_train, str(tmp_path / "cut"), "mlp", 3, q, timeout=60)
    (_, cut, run_cut), _ = _statuses(q)
    assert cut == "interrupted"
    monkeypatch.setattr(distributed, "START_METHOD", "fork")
    assert main(["run", "--resume", run_cut, "--store", str(tmp_path / "cut"), "--nproc", "2",
                 "-q", "--no-report"]) == 0
    store = RunStore(tmp_path / "cut")
    assert store.get_run(run_cut).status == "completed"
    one = Trainer(_config(), store=RunStore(tmp_path / "one"), report=False).run()
    # one process on the global batch: equal to float rounding (the DDP gradient is the mean
    # of the two shards' means, summed in another order)
    _assert_same_metrics(RunStore(tmp_path / "one"), one.run_id, store, run_cut,
                         rtol=2e-5, atol=1e-7)


def test_cli_nproc_resume_of_an_unknown_run_exits_2(tmp_path, capsys):
    assert main(["run", "--resume", "nope", "--store", str(tmp_path), "--nproc", "2"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
