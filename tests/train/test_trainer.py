import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from trainlab.store import RunStore
from trainlab.train import RunConfig, Trainer
from trainlab.train.checkpoint import load_checkpoint


def tiny(**kw) -> RunConfig:
    base = dict(task="mnist1d", task_params={"num_samples": 600}, model_params={"width": 32},
                steps=40, batch_size=32, every=10, lr=3e-3,
                schedule_params={"warmup": 5}, probes="standard")
    base.update(kw)
    return RunConfig(**base)


def final_params(store: RunStore, run_id: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(store, run_id)["model"]


def test_same_config_and_seed_give_bitwise_identical_metrics(tmp_path):
    store = RunStore(tmp_path)
    a = Trainer(tiny(), store=store, report=False).run()
    b = Trainer(tiny(), store=store, report=False).run()
    c = Trainer(tiny(seed=1), store=store, report=False).run()
    ma, mb, mc = (store.metrics(r.run_id) for r in (a, b, c))
    assert ma.keys() == mb.keys() and "sharpness" in ma and "test/accuracy" in ma
    for name in ma:
        assert np.array_equal(ma[name][1], mb[name][1], equal_nan=True), name
    assert not np.array_equal(ma["loss"][1], mc["loss"][1])


def test_caller_global_rng_is_untouched(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    cfg = tiny(steps=5, probes="none", schedule_params={})
    Trainer(cfg, store=RunStore(tmp_path), report=False).run()
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("optim,extra", [("adamw", {}), ("sgd", {"momentum": 0.9})])
def test_resume_after_interruption_is_bitwise_identical(tmp_path, optim, extra):
    cfg = tiny(optim=optim, optim_params=extra, lr=0.05 if optim == "sgd" else 3e-3,
               checkpoint_every=40)
    store = RunStore(tmp_path)
    full = Trainer(cfg, store=store, report=False).run()
    part = Trainer(cfg, store=store, report=False).run(stop_at=17)
    assert part.status == "interrupted"
    assert store.get_run(part.run_id).status == "interrupted"
    resumed = Trainer.resume(part.run_id, store=store, report=False).run()
    assert resumed.run_id == part.run_id and resumed.status == "completed"
    m_full, m_res = store.metrics(full.run_id), store.metrics(part.run_id)
    assert m_full.keys() == m_res.keys()
    for name in m_full:
        assert np.array_equal(m_full[name][0], m_res[name][0]), name
        assert np.array_equal(m_full[name][1], m_res[name][1], equal_nan=True), name
    # checkpoint_every=40 writes the state after the last update: parameters must agree
    pf, pr = final_params(store, full.run_id), final_params(store, part.run_id)
    assert all(torch.equal(pf[k], pr[k]) for k in pf)


def test_divergence_is_recorded_not_raised(tmp_path):
    store = RunStore(tmp_path)
    cfg = tiny(optim="sgd", lr=1e6, schedule="constant", schedule_params={}, steps=50)
    result = Trainer(cfg, store=store).run()
    assert result.status == "diverged"
    rec = store.get_run(result.run_id)
    assert rec.status == "diverged" and rec.summary["diverged_at"] < 50
    losses = store.metrics(result.run_id)["loss"][1]
    assert not math.isfinite(losses[-1]) and all(np.isfinite(losses[:-1]))
    assert result.report is not None and "diverged" in result.report.read_text()


def test_full_batch_and_float64_teacher(tmp_path):
    cfg = RunConfig(task="teacher-linear", model="deep-linear", init="orthogonal",
                    init_params={"gain": 0.1}, optim="sgd", lr=0.05, schedule="constant",
                    schedule_params={}, steps=30, batch_size=0, probes="sharpness,grad-norm",
                    every=10, dtype="float64")
    result = Trainer(cfg, store=RunStore(tmp_path), report=False).run()
    m = RunStore(tmp_path).metrics(result.run_id)
    assert result.status == "completed" and list(m["sharpness"][0]) == [0, 10, 20, 30]
    assert m["loss"][1][-1] < m["loss"][1][0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_leave_a_resumable_checkpoint(tmp_path, sig):
    code = (
        "from trainlab.store import RunStore\n"
        "from trainlab.train import RunConfig, Trainer\n"
        "cfg = RunConfig(task='teacher-linear', model='deep-linear', steps=10**7,"
        " batch_size=0, probes='none', schedule='constant', schedule_params={})\n"
        f"r = Trainer(cfg, store=RunStore(r'{tmp_path}'), report=False).run()\n"
        "print(r.status, r.run_id)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until training has flushed some metrics
        runs = RunStore(tmp_path).list_runs() if (tmp_path / "runs.sqlite").exists() else []
        if runs and RunStore(tmp_path).count_metrics(runs[0].id) > 0:
            break
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    status, run_id = out.split()
    assert status == "interrupted"
    store = RunStore(tmp_path)
    ck = load_checkpoint(store, run_id)
    assert ck["step"] > 0 and store.count_metrics(run_id) == ck["step"] * 2  # loss and lr
    resumed = Trainer.resume(run_id, store=store, report=False)
    assert resumed.config.steps == 10**7


def test_data_dependent_inits_through_the_trainer(tmp_path):
    for init in ("lsuv", "decoupled"):
        cfg = RunConfig(task="teacher-linear", model="deep-linear", init=init, optim="sgd",
                        lr=0.05, schedule="constant", schedule_params={}, steps=5,
                        batch_size=0, probes="none")
        assert Trainer(cfg, store=RunStore(tmp_path), report=False).run().status == "completed"


@pytest.mark.parametrize("optim,extra", [("sam", {}), ("lbfgs", {}), ("psgd-lra", {}),
                                         ("xgrad", {}), ("natural-gradient", {})])
def test_multi_pass_optimizers_get_a_closure_and_resume_bitwise(tmp_path, optim, extra):
    cfg = RunConfig(task="teacher-linear", task_params={"in_dim": 6, "out_dim": 4,
                                                        "singular_values": "3,1",
                                                        "n_train": 64, "n_test": 16},
                    model="deep-linear", model_params={"width": 5}, optim=optim,
                    optim_params=extra, lr=0.05, schedule="constant", schedule_params={},
                    steps=6, batch_size=16, probes="grad-norm", every=2, checkpoint_every=6)
    store = RunStore(tmp_path)
    full = Trainer(cfg, store=store, report=False).run()
    assert full.status == "completed"
    losses = store.metrics(full.run_id)["loss"][1]
    assert np.isfinite(losses).all()
    part = Trainer(cfg, store=store, report=False).run(stop_at=3)
    Trainer.resume(part.run_id, store=store, report=False).run()
    a, b = store.metrics(full.run_id), store.metrics(part.run_id)
    assert all(np.array_equal(a[k][1], b[k][1]) for k in a)


@pytest.mark.parametrize("optim", __import__("trainlab.optim", fromlist=["OPTIMIZERS"])
                         .OPTIMIZERS.names())
def test_every_registered_optimizer_runs_in_the_trainer(tmp_path, optim):
    cfg = RunConfig(task="teacher-linear", task_params={"in_dim": 6, "out_dim": 4,
                                                        "singular_values": "3,1",
                                                        "n_train": 32, "n_test": 8},
                    model="deep-linear", model_params={"width": 4}, optim=optim, lr=0.01,
                    schedule="constant", schedule_params={}, steps=2, batch_size=16,
                    probes="none")
    result = Trainer(cfg, store=RunStore(tmp_path), report=False).run()
    assert result.status == "completed" and math.isfinite(result.summary["final_loss"])


def test_optimizer_instance_decides_the_closure_gd_polyak_runs(tmp_path):
    """gd registers as a closure-free class, but step_rule="polyak" needs the closure's loss:
    the Trainer asks the instance (requires_closure), so the run trains instead of raising."""
    store = RunStore(tmp_path)
    cfg = tiny(optim="gd", lr=0.5, optim_params={"step_rule": "polyak"}, probes="loss", steps=20,
               schedule="constant", schedule_params={})
    res = Trainer(cfg, store=store, report=False).run()
    loss = store.metrics(res.run_id)["loss"][1]
    assert res.status == "completed"
    assert loss[-1] < loss[0]


def test_run_outside_the_main_thread_says_signals_are_not_handled(tmp_path, caplog):
    import logging
    import threading

    import trainlab.log

    trainlab.log._WARNED.discard("trainer-signals-thread")
    cfg = RunConfig(task="teacher-linear", model="deep-linear", optim="sgd", lr=0.01,
                    schedule="constant", schedule_params={}, steps=2, batch_size=0,
                    probes="none")
    results = []
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        worker = threading.Thread(target=lambda: results.append(
            Trainer(cfg, store=RunStore(tmp_path), report=False).run()))
        worker.start()
        worker.join()
    assert results and results[0].status == "completed"
    assert any("not handled" in r.message for r in caplog.records)
