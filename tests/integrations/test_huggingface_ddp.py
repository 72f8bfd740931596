"""The transformers callback under data parallelism: a real ``transformers.Trainer`` in two
processes started as ``torchrun`` starts them (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set;
the Trainer then trains through DDP on gloo, each rank on its per-device batch), records the
numbers of one process on the global batch; only rank 0 writes the store and the report.

The ``ranks`` fixture forks the two processes and fails the test after a timeout instead of
hanging."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
import transformers
from test_huggingface import PROBES, hf_train, plain_loop, tiny_gpt2, values

from trainlab.integrations.huggingface import TrainlabCallback
from trainlab.store import RunStore

STEPS, PER_DEVICE = 3, 2


def _rank(root: str, out: str, results) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"  # else accelerate sets it, with a warning
    cb = TrainlabCallback(probes=PROBES, every=1, store=root, report=True)
    trainer = hf_train(tiny_gpt2(), cb, Path(out), STEPS, PER_DEVICE)
    results.put((dist.get_rank(), trainer.args.world_size,
                 {k: [v for _, v in h] for k, h in cb.monitor.history.items()}, cb.run_id,
                 cb.report is not None))


def test_hf_trainer_on_2_processes_records_the_global_batch(tmp_path, ranks):
    # the Trainer's sequential sampler, sharded by batches: step k's global batch is
    # examples 4k .. 4k + 3, one process's batch of 4 (computed first: the ranks, forked
    # after, import nothing again)
    ref = plain_loop(tiny_gpt2(), STEPS, 2 * PER_DEVICE)
    assert transformers.Trainer and transformers.TrainingArguments  # (lazy imports)
    results = mp.get_context("fork").SimpleQueue()
    ranks(_rank, str(tmp_path / "store"), str(tmp_path), results, timeout=120)
    (_, w0, h0, run0, report0), (_, w1, h1, run1, report1) = sorted(
        results.get() for _ in range(2))
    assert w0 == w1 == 2
    assert run0 is not None and run1 is None and report0 and not report1
    assert [r.id for r in RunStore(tmp_path / "store").list_runs()] == [run0]
    for name in ("loss", "grad_norm", "update_ratio"):
        assert h0[name] == h1[name], name  # the same global numbers on both ranks
        assert h0[name] == pytest.approx(values(ref, name), rel=1e-5), name
