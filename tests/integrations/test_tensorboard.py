"""The TensorBoard sink, read back with TensorBoard's own event-file reader."""

from pathlib import Path

import torch
from tensorboard.backend.event_processing import event_accumulator
from torch import nn

from trainlab.cli import main
from trainlab.store import RunStore
from trainlab.train import Monitor, RunConfig, Trainer


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def as_float32(history: dict[str, list[tuple[int, float]]]) -> dict[str, list[tuple[int, float]]]:
    """Event files hold float32 scalars."""
    return {k: [(s, float(torch.tensor(v, dtype=torch.float32))) for s, v in rows]
            for k, rows in history.items()}


def tiny_loop(monitor_kwargs: dict, steps: int = 6) -> Monitor:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 5, generator=g), torch.randn(32, 1, generator=g)
    model = nn.Sequential(nn.Linear(5, 8, bias=True), nn.Tanh(), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, loss_fn=nn.functional.mse_loss, optimizer=opt,
                  probes="grad-norm,weight-norm@2", every=1, total_steps=steps, **monitor_kwargs)
    for k in range(steps + 1):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        mon.step(loss, (x, y))
        if k < steps:
            opt.step()
    mon.finish()
    return mon


def test_monitor_tensorboard_writes_every_recorded_value(tmp_path):
    mon = tiny_loop({"tensorboard": tmp_path / "tb"})
    got = read_scalars(tmp_path / "tb")
    assert "weight_norm" in got and "grad_norm" in got
    assert got == as_float32(mon.history)
    assert [s for s, _ in got["weight_norm"]] == [0, 2, 4, 6]  # at its own cadence


def test_sink_sees_each_step_as_it_is_recorded(tmp_path):
    """A user sink gets one call per step, right when the Monitor records it."""
    seen = []

    class Recorder:
        closed = False

        def write(self, step, values):
            seen.append((step, dict(values), mon_ref[0].step_index))

        def close(self):
            Recorder.closed = True

    mon_ref = [None]
    g = torch.Generator().manual_seed(1)
    model = nn.Linear(3, 1)
    x, y = torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)
    mon = mon_ref[0] = Monitor(model, loss_fn=nn.functional.mse_loss, probes="grad-norm",
                               every=1, sinks=[Recorder()])
    for _ in range(3):
        model.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        mon.step(loss, (x, y))
    assert [(s, k) for s, _, k in seen] == [(0, 0), (1, 1), (2, 2)]  # before the counter moves
    assert seen[1][1]["loss"] == mon.history["loss"][1][1]
    assert set(seen[0][1]) == {k for k, v in mon.history.items() if v[0][0] == 0}
    assert not Recorder.closed
    mon.finish()
    assert Recorder.closed


def tiny_config(**kw) -> RunConfig:
    base = dict(task="teacher-linear", model="mlp", model_params={"width": 8}, steps=8,
                batch_size=16, every=2, lr=1e-2, probes="grad-norm", schedule="constant",
                schedule_params={})
    return RunConfig(**{**base, **kw})


def test_trainer_sinks_and_runs_export_agree_with_the_store(tmp_path):
    store = RunStore(tmp_path / "store")
    from trainlab.integrations.tensorboard import TensorBoardSink

    result = Trainer(tiny_config(), store=store, report=False,
                     sinks=[TensorBoardSink(tmp_path / "live")]).run()
    stored = {k: list(zip(*v)) for k, v in store.metrics(result.run_id).items()}
    stored = as_float32({k: [(int(s), float(v)) for s, v in rows] for k, rows in stored.items()})
    assert read_scalars(tmp_path / "live") == stored
    assert main(["runs", "export", result.run_id, "--store", str(store.root),
                 "--format", "tensorboard", "-o", str(tmp_path / "exported")]) == 0
    assert read_scalars(tmp_path / "exported") == stored


def test_cli_run_tensorboard_flag(tmp_path, capsys):
    cfg = tiny_config(steps=4)
    cfg.save(tmp_path / "run.yaml")
    assert main(["run", "--config", str(tmp_path / "run.yaml"), "--store",
                 str(tmp_path / "store"), "--no-report", "-q",
                 "--tensorboard", str(tmp_path / "tb")]) == 0
    got = read_scalars(tmp_path / "tb")
    assert [s for s, _ in got["loss"]] == [0, 1, 2, 3, 4]
    assert [s for s, _ in got["grad_norm"]] == [0, 2, 4]


def test_export_tensorboard_needs_an_output_directory(tmp_path, capsys):
    result = Trainer(tiny_config(steps=2), store=RunStore(tmp_path), report=False).run()
    assert main(["runs", "export", result.run_id, "--store", str(tmp_path),
                 "--format", "tensorboard"]) == 2
    assert "-o DIR" in capsys.readouterr().err


def test_resumed_run_replaces_the_interrupted_tail(tmp_path):
    """A run that crashed after its last checkpoint and is resumed: TensorBoard (purge_step)
    shows what the store shows, the crashed steps replaced by the resumed ones."""
    from trainlab.integrations.tensorboard import TensorBoardSink

    class CrashAt:
        def __init__(self, step):
            self.step = step

        def write(self, step, values):
            if step == self.step:
                raise RuntimeError("simulated crash")

        def close(self):
            pass

    store = RunStore(tmp_path / "store")
    cfg = tiny_config(steps=8, checkpoint_every=3)
    trainer = Trainer(cfg, store=store, report=False,
                      sinks=[TensorBoardSink(tmp_path / "tb"), CrashAt(5)])
    try:
        trainer.run()
    except RuntimeError as exc:
        assert "simulated crash" in str(exc)
    run_id = store.list_runs()[0].id
    assert store.get_run(run_id).status == "failed"
    crashed = read_scalars(tmp_path / "tb")
    assert [s for s, _ in crashed["loss"]] == [0, 1, 2, 3, 4, 5]
    Trainer.resume(run_id, store=store, report=False,
                   sinks=[TensorBoardSink(tmp_path / "tb")]).run()
    stored = {k: list(zip(*v)) for k, v in store.metrics(run_id).items()}
    stored = as_float32({k: [(int(s), float(v)) for s, v in rows] for k, rows in stored.items()})
    assert [s for s, _ in stored["loss"]] == list(range(9))
    assert read_scalars(tmp_path / "tb") == stored
