"""The Trainer: runs a :class:`RunConfig` end to end with probes, store, checkpoints, report."""

from __future__ import annotations

import io
import math
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainlab.init import INITS
from trainlab.init import apply as apply_init
from trainlab.models import build_model
from trainlab.optim import ScheduleLR, build_optimizer, build_schedule, optimizer_info
from trainlab.optim.loss_closure import make_closure
from trainlab.store import RunStore, atomic_write_bytes
from trainlab.tasks import build_task
from trainlab.train.config import RunConfig
from trainlab.train.data import BatchSampler
from trainlab.train.device import resolve_device
from trainlab.train.monitor import Monitor

CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str
    summary: dict[str, Any]
    report: Path | None
    store: Path

    def _repr_html_(self) -> str:
        """The run report, inline in a notebook (:mod:`trainlab.report.notebook`)."""
        from trainlab.report.notebook import run_html

        return run_html(RunStore(self.store), self.run_id)


class Trainer:
    """Builds task, model, init, optimizer, schedule and probes from a config and trains.

    One seed fixes everything: the model is built and initialized from generators seeded by
    ``config.seed``; batches come from another; the global torch RNG is forked, seeded, and
    given back to the caller afterwards. The same config and seed give bitwise-identical
    metrics in the same environment.

    A NaN/Inf loss ends the run with status ``diverged`` (recorded, not raised). Ctrl-C (or
    :meth:`request_stop`) finishes the current step, writes a checkpoint and marks the run
    ``interrupted``; :meth:`resume` continues it bitwise-identically.
    """

    def __init__(self, config: RunConfig, *, store: RunStore | None = None,
                 progress: bool = False, report: bool = True, sinks: Sequence[Any] = ()):
        self.config = config.validate()
        self.sinks = list(sinks)  # more outputs of the Monitor (trainlab.integrations.Sink)
        self.store = store if store is not None else RunStore()
        self.progress, self.write_report = progress, report
        self._stop = False
        self._run_id: str | None = None
        self._checkpoint: dict[str, Any] | None = None

    @classmethod
    def resume(cls, run_ref: str, *, store: RunStore | None = None, progress: bool = False,
               report: bool = True, sinks: Sequence[Any] = ()) -> Trainer:
        """A trainer that continues run ``run_ref`` from its last checkpoint."""
        from trainlab.errors import TrainlabError

        store = store if store is not None else RunStore()
        run_id = store.resolve(run_ref)
        record = store.get_run(run_id)
        path = store.artifact(run_id, CHECKPOINT)
        if path is None or not path.exists():
            raise TrainlabError(f"run {run_id} has no checkpoint to resume from")
        if record.status == "completed":
            raise TrainlabError(f"run {run_id} is already completed")
        self = cls(RunConfig.from_dict(record.config), store=store, progress=progress,
                   report=report, sinks=sinks)
        self._run_id = run_id
        self._checkpoint = torch.load(path, weights_only=False)
        return self

    def request_stop(self) -> None:
        """Stop at the next step boundary with a checkpoint (what Ctrl-C does)."""
        self._stop = True

    # ---- building --------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.config
        dtype = getattr(torch, cfg.dtype)
        torch.manual_seed(cfg.seed)  # inside fork_rng: only for modules' own draws
        self.task = build_task(cfg.task, **cfg.task_params).to(dtype)
        self.task.z_loss = cfg.z_loss
        self.model = build_model(cfg.model, self.task.input_shape, self.task.num_outputs,
                                 **cfg.model_params).to(dtype)
        g_init = torch.Generator().manual_seed(cfg.seed)
        n = len(self.task.x_train)
        init_idx = torch.randperm(n, generator=g_init)[: max(cfg.batch_size, 256) if
                                                        cfg.batch_size else n]
        init_batch = self.task.x_train[init_idx]
        if INITS.entry(cfg.init).info.batch_kind == "pair":  # e.g. "decoupled"
            init_batch = (init_batch, self.task.y_train[init_idx])
        self.init_report = apply_init(self.model, cfg.init, batch=init_batch,
                                      generator=g_init, **cfg.init_params)
        device = resolve_device(cfg.device)  # built and initialized on the CPU, then moved
        if device.type != "cpu":
            self.model.to(device)
            self.task = self.task.to(device=device)
        self.optimizer = build_optimizer(cfg.optim, self.model.parameters(), cfg.lr,
                                         **cfg.optim_params)
        # multi-pass methods (SAM, L-BFGS, PSGD, ...) get the contract's closure on the step's
        # batch (trainlab.optim.closure), with exact Hessian and GGN products; the instance
        # decides (gd with step_rule="polyak" needs one, gd without does not)
        self.needs_closure = optimizer_info(self.optimizer).needs_closure
        self.scheduler = ScheduleLR(self.optimizer,
                                    build_schedule(cfg.schedule, cfg.steps,
                                                   **cfg.schedule_params))
        self.sampler = BatchSampler(n, cfg.batch_size,
                                    torch.Generator().manual_seed(cfg.seed + 1))

    def _checkpoint_state(self, monitor: Monitor) -> dict[str, Any]:
        return {"step": monitor.step_index, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
                "rng": torch.get_rng_state(), "monitor": monitor.state_dict()}

    def _save_checkpoint(self, monitor: Monitor) -> Path:
        monitor.flush()
        buf = io.BytesIO()
        torch.save(self._checkpoint_state(monitor), buf)
        path = self.store.artifact_dir(monitor.run_id) / "checkpoint.pt"
        atomic_write_bytes(path, buf.getvalue())
        self.store.add_artifact(monitor.run_id, CHECKPOINT, path)
        return path

    # ---- running ---------------------------------------------------------------------
    def run(self, *, stop_at: int | None = None) -> RunResult:
        """Train. ``stop_at=k`` simulates an interruption before step ``k`` (for tests)."""
        with torch.random.fork_rng(devices=[]):
            return self._run(stop_at)

    def _run(self, stop_at: int | None) -> RunResult:
        cfg = self.config
        self._build()
        monitor = Monitor(self.model, loss_fn=self.task.loss, optimizer=self.optimizer,
                          probes=cfg.probes, every=cfg.every, probe_params=cfg.probe_params,
                          total_steps=cfg.steps, store=self.store, run_id=self._run_id,
                          config=cfg.to_dict(), name=cfg.name, task=self.task, seed=cfg.seed,
                          sinks=self.sinks)
        if self._checkpoint is not None:
            ck = self._checkpoint
            self.model.load_state_dict(ck["model"])
            self.optimizer.load_state_dict(ck["optimizer"])
            self.scheduler.load_state_dict(ck["scheduler"])
            self.sampler.load_state_dict(ck["sampler"])
            torch.set_rng_state(ck["rng"])
            monitor.load_state_dict(ck["monitor"])
            self.store.truncate_metrics(monitor.run_id, monitor.step_index)
            self.store.set_status(monitor.run_id, "running")
        self._run_id = monitor.run_id
        status = self._loop(monitor, stop_at)
        summary = monitor.finish(status)
        report = None
        if self.write_report:
            from trainlab.report import write_run_report

            report = write_run_report(self.store, monitor.run_id)
        return RunResult(monitor.run_id, status, summary, report, self.store.root)

    def _loop(self, monitor: Monitor, stop_at: int | None) -> str:
        cfg, task = self.config, self.task
        old_handler = self._install_sigint()
        bar = _Progress(cfg.steps, self.progress)
        status = "completed"
        try:
            for k in range(monitor.step_index, cfg.steps + 1):
                if self._stop or (stop_at is not None and k >= stop_at):
                    self._save_checkpoint(monitor)
                    status = "interrupted"
                    break
                idx = self.sampler.next()
                x, y = task.x_train[idx], task.y_train[idx]
                self.optimizer.zero_grad(set_to_none=True)
                loss = task.loss(self.model(x), y)
                loss.backward()
                if not monitor.step(loss, (x, y)):
                    status = "diverged"
                    break
                if k == cfg.steps:
                    break
                if self.needs_closure:
                    self.optimizer.step(make_closure(self.model, task.loss, x, y))
                else:
                    self.optimizer.step()
                self.scheduler.step()
                if cfg.checkpoint_every and (k + 1) % cfg.checkpoint_every == 0:
                    self._save_checkpoint(monitor)
                bar.update(k + 1, monitor)
        except BaseException:
            monitor.finish("failed")
            raise
        finally:
            bar.close()
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
        return status

    def _install_sigint(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum: int, frame: Any) -> None:
            if self._stop:  # second Ctrl-C: stop hard
                raise KeyboardInterrupt
            self._stop = True

        return signal.signal(signal.SIGINT, handler)


class _Progress:
    """A rich progress bar showing the loss, updated a few times per second at most."""

    def __init__(self, total: int, enabled: bool):
        self.enabled = enabled
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._p = Progress(TextColumn("training"), BarColumn(),
                               TextColumn("{task.completed}/{task.total}"),
                               TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                               transient=False)
            self._task = self._p.add_task("train", total=total, loss="-")
            self._p.start()
            self._every = max(1, total // 200)

    def update(self, done: int, monitor: Monitor) -> None:
        if self.enabled and done % self._every == 0:
            loss = monitor.last("loss")
            self._p.update(self._task, completed=done,
                           loss=f"{loss:.4f}" if math.isfinite(loss) else "nan")

    def close(self) -> None:
        if self.enabled:
            self._p.stop()


def train(config: RunConfig | None = None, **overrides: Any) -> RunResult:
    """Convenience: ``train(steps=500, lr=0.01)`` runs a config with overrides."""
    cfg = (config or RunConfig()).replace(**overrides)
    return Trainer(cfg).run()
