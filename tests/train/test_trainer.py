import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from trainlab.init import apply as apply_init
from trainlab.models import build_model
from trainlab.optim import build_optimizer, optimizer_info
from trainlab.optim.loss_closure import make_closure
from trainlab.store import RunStore
from trainlab.tasks import build_task
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


# every registered optimizer against a plain hand-written loop: a tiny deep-linear teacher,
# mini-batches of 16 out of 32 (two per epoch), six updates; the (lr, params) where the
# default lr of 0.05 is off the optimizer's scale (DoG/U-DoG are parameter-free: lr is a
# multiplier and reps_rel the first step's size relative to the weights)
_TASK = {"in_dim": 6, "out_dim": 4, "singular_values": "3,1", "n_train": 32, "n_test": 8}
_STEPS, _BATCH = 6, 16
_SETTINGS = {"dog": (1.0, {"reps_rel": 0.1}), "u-dog": (1.0, {"reps_rel": 0.1}),
             "entropy-sgd": (1.0, {}), "induced-metric": (1.0, {}),
             "polynomial-preconditioned": (0.2, {}), "regularized-newton": (0.2, {}),
             "psgd": (0.2, {}), "dasa": (0.01, {}),
             "thermodynamic-ngd": (0.05, {"ou_time": 2.0, "ou_dt": 0.1})}  # 20 OU steps, not 400


def _hand_written_run(optim: str, lr: float, params: dict, seed: int):
    """What the Trainer documents, written out: model and init from generators seeded by
    ``seed`` (the init generator first draws the init batch's order), batches from a
    generator seeded ``seed + 1`` (a fresh permutation per epoch), a constant lr, the
    contract closure on the step's batch for closure methods. Returns the loss of every
    step, the final weights and the full training loss before and after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        task = build_task("teacher-linear", **_TASK)
        model = build_model("deep-linear", task.input_shape, task.num_outputs, width=4)
        g_init = torch.Generator().manual_seed(seed)
        n = len(task.x_train)
        init_batch = task.x_train[torch.randperm(n, generator=g_init)]
        apply_init(model, "orthogonal", batch=init_batch, generator=g_init)
        opt = build_optimizer(optim, model.parameters(), lr, **params)
        g_batch = torch.Generator().manual_seed(seed + 1)

        def full_loss() -> float:
            with torch.no_grad():
                return task.loss(model(task.x_train), task.y_train).item()

        before, losses, per_epoch = full_loss(), [], n // _BATCH
        for k in range(_STEPS + 1):
            if k % per_epoch == 0:
                perm = torch.randperm(n, generator=g_batch)
            idx = perm[(k % per_epoch) * _BATCH:(k % per_epoch + 1) * _BATCH]
            x, y = task.x_train[idx], task.y_train[idx]
            opt.zero_grad(set_to_none=True)
            loss = task.loss(model(x), y)
            loss.backward()
            losses.append(loss.item())
            if k == _STEPS:
                break
            if optimizer_info(opt).needs_closure:
                opt.step(make_closure(model, task.loss, x, y))
            else:
                opt.step()
        return losses, model.state_dict(), before, full_loss()


@pytest.mark.parametrize("optim", __import__("trainlab.optim", fromlist=["OPTIMIZERS"])
                         .OPTIMIZERS.names())
def test_every_registered_optimizer_trains_as_the_hand_written_loop(tmp_path, optim):
    """For every registered optimizer the Trainer's run is, to the bit, the plain loop
    (every step's loss and the final weights), and six updates lower the full training loss
    by at least 10% (each is a descent method at this lr on this task)."""
    lr, params = _SETTINGS.get(optim, (0.05, {}))
    cfg = RunConfig(task="teacher-linear", task_params=_TASK, model="deep-linear",
                    model_params={"width": 4}, optim=optim, optim_params=params, lr=lr,
                    schedule="constant", schedule_params={}, steps=_STEPS, batch_size=_BATCH,
                    probes="none", checkpoint_every=_STEPS, seed=3)
    store = RunStore(tmp_path)
    result = Trainer(cfg, store=store, report=False).run()
    assert result.status == "completed"
    losses, weights, before, after = _hand_written_run(optim, lr, params, seed=3)
    assert list(store.metrics(result.run_id)["loss"][1]) == losses
    trained = final_params(store, result.run_id)
    assert trained.keys() == weights.keys()
    assert all(torch.equal(trained[k], weights[k]) for k in weights)
    assert after <= 0.9 * before, (before, after)


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
