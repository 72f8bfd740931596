"""Data-parallel training: 2 processes on gloo (CPU) record the numbers of one process on the
global batch; only rank 0 writes the store; what cannot be equal is reported.

Processes are started by fork (``distributed.START_METHOD``), which starts them in a fraction
of the time of ``spawn`` and runs the same code."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from trainlab.cli import main
from trainlab.store import RunStore
from trainlab.train import distributed

ARGS = ["run", "--task", "gaussian-mixture", "-p", "task.n_train=128", "-p", "task.n_test=32",
        "-p", "task.dim=6", "--model", "mlp", "-p", "model.width=8", "--optim", "sgd",
        "-p", "optim.momentum=0.9", "--lr", "0.2", "--schedule", "constant", "--steps", "4",
        "--batch-size", "16", "--every", "2", "-q",
        # replicated, reduced (HVPs, per-sample statistics) and global-batch probes
        "--probes", "grad-norm,update-ratio,rotation,eval,grad-noise,sharpness,"
                    "hessian-spectrum,gradient-subspace,logit-divergence",
        "-p", "probe.hessian-spectrum.k=2", "-p", "probe.hessian-spectrum.trace_matvecs=6",
        "-p", "probe.hessian-spectrum.frobenius_matvecs=4"]


def _latest(root):
    store = RunStore(root)
    runs = store.list_runs()
    return store, runs


def test_nproc_2_records_the_single_process_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "START_METHOD", "fork")
    assert main([*ARGS, "--store", str(tmp_path / "one"), "--no-report"]) == 0
    assert main([*ARGS, "--store", str(tmp_path / "ddp"), "--nproc", "2"]) == 0
    one, (r1,) = _latest(tmp_path / "one")
    ddp, runs = _latest(tmp_path / "ddp")
    assert len(runs) == 1  # rank 1 created no run in the store
    r2 = runs[0]
    assert r2.status == "completed" and r2.summary["world_size"] == 2
    assert "skipped_probes" not in r2.summary and "probe_notes" not in r2.summary
    m1, m2 = one.metrics(r1.id), ddp.metrics(r2.id)
    assert set(m1) == set(m2)
    for name in ("loss", "grad_norm", "sharpness", "gns", "gsnr", "hessian/trace",
                 "grad_subspace_overlap", "logit/log_z_mean", "test/accuracy",
                 "per_sample_grad_norm/std"):
        assert any(n == name or n.startswith(name) for n in m1), name
    for name in m1:
        (s1, v1), (s2, v2) = m1[name], m2[name]
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_allclose(v2, v1, rtol=2e-5, atol=1e-7, err_msg=name)
    assert len(list((tmp_path / "ddp").rglob("*.html"))) == 1  # rank 0's report


def _own_loop(rank: int, world: int, port: int, root: str, results) -> None:
    """One rank of a hand-written DDP loop with a Monitor (torchrun's environment)."""
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from trainlab.probes import PROBES, Probe, ProbeContext
    from trainlab.probes.norms import GradNorm
    from trainlab.probes.sharpness import Sharpness
    from trainlab.train import Monitor

    class Unsupported(Probe):
        name = "test-unsupported"

        def measure(self, ctx):
            return {"never": 1.0}

    PROBES.register("test-unsupported", Unsupported, ddp="unsupported", metrics=("never",),
                    summary="a probe declared unsupported under DDP (this test only)")
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("trainlab").addHandler(handler)
    group = distributed.init_from_env("gloo")
    assert group is not None and group.world_size == world
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    model = nn.parallel.DistributedDataParallel(net)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, generator=g), torch.randint(0, 2, (8,), generator=g)
    cut = [0, 3, 8]  # shards of unequal sizes: 3 and 5 examples
    xs, ys = x[cut[rank]:cut[rank + 1]], y[cut[rank]:cut[rank + 1]]
    mon = Monitor(model, loss_fn=nn.functional.cross_entropy,
                  probes=[GradNorm(every=1), Unsupported(every=1), Sharpness(every=1)],
                  store=RunStore(root), every=1)
    loss = nn.functional.cross_entropy(model(xs), ys)
    loss.backward()
    mon.step(loss, (xs, ys))
    summary = mon.finish()
    with torch.no_grad():
        full = float(nn.functional.cross_entropy(net(x), y))
    # one process's sharpness on the global batch, from the monitor's random start
    ref = Sharpness(every=1).measure(ProbeContext(
        step=0, model=net, loss_fn=nn.functional.cross_entropy, batch=(x, y),
        generator=torch.Generator().manual_seed(7919)))["sharpness"]
    results.put((rank, mon.history["loss"][0][1], full, summary, mon.run_id,
                 (mon.history["sharpness"][0][1], ref),
                 [m for m in messages if "data-parallel" in m or "unsupported" in m]))
    dist.destroy_process_group()


def test_own_loop_monitor_reports_what_cannot_be_global(tmp_path):
    ctx = mp.get_context("fork")
    results = ctx.SimpleQueue()
    mp.start_processes(_own_loop, args=(2, distributed.free_port(), str(tmp_path), results),
                       nprocs=2, join=True, start_method="fork")
    out = sorted(results.get() for _ in range(2))
    (_, loss0, full, summary0, run0, sharp0, msgs0), (_, loss1, _, summary1, run1, sharp1,
                                                        _) = out
    # the loss is the global batch's (example-weighted mean over the ranks), on both ranks
    assert loss0 == pytest.approx(full, rel=1e-6) and loss1 == pytest.approx(full, rel=1e-6)
    # Hessian-vector products summed over the ranks with weights 3/8 and 5/8: the global
    # batch's Hessian, also for unequal shards
    assert sharp0[0] == pytest.approx(sharp0[1], rel=1e-5) and sharp1[0] == sharp0[0]
    assert run0 is not None and run1 is None  # rank 0 alone owns a run in the store
    assert [r.id for r in RunStore(tmp_path).list_runs()] == [run0]
    # unequal shards: warned and in the run record; an unsupported probe: skipped, warned
    assert "unequal sizes [3, 5]" in summary0["probe_notes"]["data-parallel/shards"]
    assert "test-unsupported" in summary0["skipped_probes"]
    assert summary0["world_size"] == 2 and summary1["world_size"] == 2
    assert any("unequal sizes" in m for m in msgs0)
    assert any("not supported under data-parallel" in m for m in msgs0)


@pytest.mark.parametrize("extra, message", [
    (["--nproc", "0"], "nproc"),
    (["--nproc", "3"], "does not divide"),
    (["--nproc", "2", "--resume", "latest"], "stored configuration"),
])
def test_nproc_bad_input_exits_2(tmp_path, capsys, extra, message):
    assert main([*ARGS, "--store", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_every_probe_declares_a_known_ddp_policy():
    from trainlab.probes import PROBES

    policies = {name: PROBES.entry(name).info.ddp for name in PROBES.names()}
    assert set(policies.values()) <= set(distributed.POLICIES)
    # the probes that reduce across ranks themselves are the curvature and per-sample ones
    assert {n for n, p in policies.items() if p == "reduced"} == {
        "sharpness", "hessian-spectrum", "preconditioned-sharpness", "gradient-subspace",
        "grad-noise"}


def _interrupted_rank(rank: int, world: int, port: int, root: str, results) -> None:
    """One rank of a DDP Trainer stopped before step 3 (as Ctrl-C on one rank would)."""
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from trainlab.train import Trainer

    distributed.init_from_env("gloo")
    trainer = Trainer(_config(), store=RunStore(root), report=False)
    # only rank 1 is asked to stop: the ranks agree, both stop at the same step
    result = trainer.run(stop_at=3 if rank == 1 else None)
    results.put((rank, result.status, trainer.store.root == RunStore(root).root))
    dist.destroy_process_group()


def _config():
    from trainlab.train import RunConfig

    return RunConfig(task="gaussian-mixture", task_params={"n_train": 64, "n_test": 16,
                                                           "dim": 5},
                     model="mlp", model_params={"width": 8}, optim="sgd", lr=0.3,
                     optim_params={"momentum": 0.9}, schedule="constant", schedule_params={},
                     steps=5, batch_size=8, probes="grad-norm,rotation", every=1)


def test_a_stop_on_one_rank_stops_all_and_resumes_in_one_process(tmp_path):
    from trainlab.train import Trainer

    results = mp.get_context("fork").SimpleQueue()
    mp.start_processes(_interrupted_rank,
                       args=(2, distributed.free_port(), str(tmp_path / "ddp"), results),
                       nprocs=2, join=True, start_method="fork")
    out = sorted(results.get() for _ in range(2))
    assert [o[1] for o in out] == ["interrupted", "interrupted"]
    assert out[0][2] and not out[1][2]  # rank 1 trained against a scratch store
    store = RunStore(tmp_path / "ddp")
    (run,) = store.list_runs()
    # rank 0's checkpoint is the single-process state: one process finishes the run with
    # the numbers of an uninterrupted single-process run
    resumed = Trainer.resume(run.id, store=store, report=False).run()
    assert resumed.status == "completed"
    ref = Trainer(_config(), store=RunStore(tmp_path / "one"), report=False).run()
    m_ref = RunStore(tmp_path / "one").metrics(ref.run_id)
    m_res = store.metrics(run.id)
    assert set(m_ref) == set(m_res)
    for name in m_ref:
        np.testing.assert_array_equal(m_res[name][0], m_ref[name][0])
        np.testing.assert_allclose(m_res[name][1], m_ref[name][1], rtol=2e-5, atol=1e-7,
                                   err_msg=name)


def test_nproc_on_cuda_needs_a_gpu_per_process(tmp_path, capsys):
    if torch.cuda.device_count() >= 2:
        pytest.skip("this host has 2 GPUs: the refusal does not apply")
    assert main([*ARGS, "--store", str(tmp_path), "--nproc", "2", "--device", "cuda"]) == 2
    assert "at least 2 GPUs" in capsys.readouterr().err


def test_a_closure_optimizer_is_refused_under_ddp_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(distributed, "START_METHOD", "fork")
    i = ARGS.index("optim.momentum=0.9")
    args = [*ARGS[:i - 1], *ARGS[i + 1:]]
    assert main([*args, "--store", str(tmp_path), "--nproc", "2", "--optim", "lbfgs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("needs a closure" in line and "one process" in line for line in err), err
    assert err[-1].startswith("trainlab run: error: a data-parallel process failed")
