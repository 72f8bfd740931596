"""The Trainer: runs a :class:`RunConfig` end to end with probes, store, checkpoints, report.

Durability: the run is owned by this process (a lease with a heartbeat in the store, see
:mod:`trainlab.store.lease`). Metrics reach the store every ``flush_seconds`` (default 5 s)
and a checkpoint every ``checkpoint_seconds`` (default 300 s) and every ``checkpoint_every``
steps, so a ``kill -9`` loses at most the training since the last checkpoint; the run then
shows as ``crashed`` and ``trainlab run --resume RUN`` continues it from that checkpoint
(from step 0 when it had none), bitwise as if never stopped, with the metrics written after
the checkpoint replaced. SIGINT (Ctrl-C) and SIGTERM finish the step, write a checkpoint and
mark the run ``interrupted``. A write error (full disk) removes the partial file, records
the run as ``failed`` with the reason and keeps what was already written.

Data-parallel training: a Trainer built in every process of a ``torch.distributed`` job
(``trainlab run --nproc N``, or ``torchrun``) trains the same run as one process would,
each rank on its contiguous share of every batch (``batch_size`` must divide by the number
of processes) through :class:`~torch.nn.parallel.DistributedDataParallel`, and the Monitor
records the global batch's numbers (:mod:`trainlab.train.distributed`). Rank 0 owns the run
in the store, writes the metrics, the checkpoints and the report; the other ranks keep a
private temporary store that is deleted when they finish. The ranks agree at every step on
stopping (a signal on any rank), on a lost lease and on a timed checkpoint. A checkpoint is
rank 0's state, the state of the single-process run, plus every rank's RNG state:
``trainlab run --resume RUN`` continues it in one process, ``trainlab run --nproc N --resume
RUN`` (or under torchrun) in N, rank 0 sending the state to the others (:meth:`Trainer.resume`).
Optimizers that need a closure (SAM, L-BFGS, ...) are refused under DDP: their
extra passes would see one shard, with gradients not averaged.
"""

from __future__ import annotations

import logging
import math
import signal
import sqlite3
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainlab.errors import ConfigError, TrainlabError
from trainlab.init import INITS
from trainlab.init import apply as apply_init
from trainlab.log import warn_once
from trainlab.models import build_model
from trainlab.optim import ScheduleLR, build_optimizer, build_schedule, optimizer_info
from trainlab.optim.loss_closure import make_closure
from trainlab.probes import PROBES
from trainlab.store import LeaseLostError, RunStore
from trainlab.tasks import build_task
from trainlab.train.checkpoint import CHECKPOINT, has_checkpoint, load_checkpoint, save_checkpoint
from trainlab.train.compatibility import check_fits
from trainlab.train.config import RunConfig
from trainlab.train.data import BatchSampler
from trainlab.train.device import resolve_device
from trainlab.train.distributed import current, shard
from trainlab.train.monitor import Monitor

__all__ = ["CHECKPOINT", "RunResult", "Trainer", "train"]

log = logging.getLogger("trainlab")
# what a builder raises on parameters it cannot take (torch's own checks included)
_BUILD_ERRORS = (TypeError, ValueError, IndexError, KeyError, RuntimeError, OverflowError,
                 MemoryError, AssertionError, ZeroDivisionError)
_STOP_SIGNALS = ("SIGINT", "SIGTERM")


def _built(what: str, name: str, params: dict[str, Any], fn: Any) -> Any:
    """``fn()``, with a builder's own exception turned into a one-line ConfigError."""
    try:
        return fn()
    except TrainlabError:
        raise
    except _BUILD_ERRORS as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConfigError(f"{what} {name!r} cannot be built with parameters {params}: "
                          f"{first}") from None


def _write_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"


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

    Everything that can be wrong with the config (parameters a builder rejects, a model
    that does not fit the task, an unwritable store) raises before a run is created. A
    NaN/Inf loss ends the run with status ``diverged`` (recorded, not raised). Ctrl-C,
    SIGTERM (or :meth:`request_stop`) finish the current step, write a checkpoint and mark
    the run ``interrupted``; :meth:`resume` continues it bitwise-identically, also a
    ``crashed`` one (see the module doc).
    """

    def __init__(self, config: RunConfig, *, store: RunStore | None = None,
                 progress: bool = False, report: bool = True,
                 sinks: Sequence[Any] = ()):
        if not isinstance(config, RunConfig):
            raise ConfigError(f"Trainer needs a RunConfig, got {type(config).__name__}")
        self.config = config.validate()
        self.sinks = list(sinks)  # more outputs of the Monitor (trainlab.integrations.Sink)
        self.dist = current()  # data-parallel training (None: one process)
        self._scratch: tempfile.TemporaryDirectory | None = None
        if self.dist is not None and not self.dist.is_main:  # rank 0 alone writes the store
            self._scratch = tempfile.TemporaryDirectory(prefix="trainlab-rank")
            store, report, progress = RunStore(self._scratch.name), False, False
        self.store = store if store is not None else RunStore()
        self.progress, self.write_report = progress, report
        self._stop = False
        self._run_id: str | None = None
        self._checkpoint: dict[str, Any] | None = None

    @classmethod
    def resume(cls, run_ref: str, *, store: RunStore | None = None, progress: bool = False,
               report: bool = True, take_over: bool = False,
               sinks: Sequence[Any] = ()) -> Trainer:
        """A trainer that continues run ``run_ref`` from its last checkpoint (from step 0
        when a crashed run has none). This process becomes the run's owner first: a run
        owned by another live process is refused (:class:`~trainlab.store.RunOwnedError`);
        ``take_over`` takes it from an owner whose liveness cannot be checked from here.

        Under data-parallel training every rank calls it: rank 0 owns the run and reads its
        configuration and checkpoint from ``store`` and sends them to the other ranks (which
        need no access to the store), so every rank loads the same state; each rank then
        takes back its own RNG state when the checkpoint has one per rank of the same world
        size. What rank 0 cannot resume is raised on every rank."""
        dist_ = current()
        if dist_ is None:
            return cls._resume_here(run_ref, store, progress, report, take_over, sinks)
        trainer, error, message = None, None, ("", None, None)
        if dist_.is_main:
            try:
                trainer = cls._resume_here(run_ref, store, progress, report, take_over, sinks)
                message = ("", trainer.config.to_dict(), trainer._checkpoint)
            except BaseException as exc:  # the other ranks must not wait for the state
                error, message = exc, (_write_error(exc), None, None)
        why, config, checkpoint = dist_.from_main(message)
        if error is not None:
            raise error
        if why:
            raise TrainlabError(f"rank 0 could not resume run {run_ref!r}: {why}")
        if trainer is None:  # another rank: the same configuration and state, a scratch store
            trainer = cls(RunConfig.from_dict(config), store=store, progress=progress,
                          report=report, sinks=sinks)
            trainer._checkpoint = checkpoint
        return trainer

    @classmethod
    def _resume_here(cls, run_ref: str, store: RunStore | None, progress: bool, report: bool,
                     take_over: bool, sinks: Sequence[Any]) -> Trainer:
        store = store if store is not None else RunStore()
        run_id = store.resolve(run_ref)
        if store.get_run(run_id).status == "completed":
            raise TrainlabError(f"run {run_id} is already completed")
        store.acquire(run_id, take_over=take_over)
        try:
            record = store.get_run(run_id)
            self = cls(RunConfig.from_dict(record.config), store=store, progress=progress,
                       report=report, sinks=sinks)
            self._run_id = run_id
            if has_checkpoint(store, run_id):
                self._checkpoint = load_checkpoint(store, run_id)
            else:
                log.warning("run %s has no checkpoint: it restarts from step 0", run_id)
        except BaseException:
            store.release(run_id)
            raise
        return self

    def request_stop(self) -> None:
        """Stop at the next step boundary with a checkpoint (what Ctrl-C does)."""
        self._stop = True

    # ---- building --------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.config
        dtype = getattr(torch, cfg.dtype)
        torch.manual_seed(cfg.seed)  # inside fork_rng: only for modules' own draws
        self.task = _built("task", cfg.task, cfg.task_params,
                           lambda: build_task(cfg.task, **cfg.task_params).to(dtype))
        self.task.z_loss = cfg.z_loss
        self.model = _built("model", cfg.model, cfg.model_params, lambda: self.task.build_network(
            build_model(cfg.model, self.task.input_shape, self.task.num_outputs,
                        **cfg.model_params)).to(dtype))
        check_fits(self.model, cfg.model, self.task, cfg.task)
        g_init = torch.Generator().manual_seed(cfg.seed)
        n = len(self.task.x_train)
        init_idx = torch.randperm(n, generator=g_init)[: max(cfg.batch_size, 256) if
                                                        cfg.batch_size else n]
        init_batch = self.task.x_train[init_idx]
        if INITS.entry(cfg.init).info.batch_kind == "pair":  # e.g. "decoupled"
            init_batch = (init_batch, self.task.y_train[init_idx])
        self.init_report = _built("init", cfg.init, cfg.init_params, lambda: apply_init(
            self.model, cfg.init, batch=init_batch, generator=g_init, **cfg.init_params))
        device = resolve_device(cfg.device)  # built and initialized on the CPU, then moved
        if self.dist is not None and device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())  # LOCAL_RANK's GPU
        if device.type != "cpu":
            self.model.to(device)
            self.task = self.task.to(device=device)
        self.optimizer = _built("optimizer", cfg.optim, cfg.optim_params, lambda:
                                build_optimizer(cfg.optim, self.model.parameters(), cfg.lr,
                                                **cfg.optim_params))
        # multi-pass methods (SAM, L-BFGS, PSGD, ...) get the contract's closure on the step's
        # batch (trainlab.optim.closure), with exact Hessian and GGN products; the instance
        # decides (gd with step_rule="polyak" needs one, gd without does not)
        self.needs_closure = optimizer_info(self.optimizer).needs_closure
        self.scheduler = ScheduleLR(self.optimizer, _built(
            "schedule", cfg.schedule, cfg.schedule_params,
            lambda: build_schedule(cfg.schedule, cfg.steps, **cfg.schedule_params)))
        self.sampler = BatchSampler(n, cfg.batch_size,
                                    torch.Generator().manual_seed(cfg.seed + 1))
        self.train_model = self.model  # what the training step calls (DDP's wrapper)
        if self.dist is not None:
            self._data_parallel(device)
        self.probes = [_built("probe", s.name, cfg.probe_params.get(s.name, {}), lambda s=s:
                              PROBES.get(s.name)(every=s.every or cfg.every,
                                                 **cfg.probe_params.get(s.name, {})))
                       for s in cfg.probe_list]

    def _data_parallel(self, device: torch.device) -> None:
        """Check that the run can be data-parallel and wrap the model in DDP."""
        if self.needs_closure:
            raise ConfigError(f"optimizer {self.config.optim!r} needs a closure (extra "
                              f"forward/backward passes per step), which data-parallel "
                              f"training does not average across processes; run it in one "
                              f"process (without --nproc)")
        shard(torch.arange(self.sampler.batch_size), self.dist)  # raises unless it divides
        self.train_model = torch.nn.parallel.DistributedDataParallel(
            self.model, device_ids=[device.index] if device.type == "cuda" else None)

    def _agree(self, *flags: bool) -> list[bool]:
        """Under data-parallel training: each flag OR-ed over the ranks (whether any rank lost
        the lease, must stop, is due for a timed checkpoint: all ranks then act at the same
        step)."""
        if self.dist is None:
            return list(flags)
        return self.dist.any_of(list(flags))

    def _checkpoint_state(self, monitor: Monitor) -> dict[str, Any]:
        return {"step": monitor.step_index, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
                "rng": torch.get_rng_state(), "monitor": monitor.state_dict()}

    def _save_checkpoint(self, monitor: Monitor) -> Path | None:
        """Write the checkpoint (every rank calls it at the same step; rank 0 writes its
        state, the run's, with every rank's RNG state)."""
        rngs = None if self.dist is None else self.dist.objects(torch.get_rng_state())
        self._last_checkpoint = time.monotonic()
        if self.dist is not None and not self.dist.is_main:
            return None  # rank 0's state is the run's state
        monitor.flush()
        state = self._checkpoint_state(monitor)
        if rngs is not None:
            state["rng_ranks"] = rngs
        path = save_checkpoint(self.store, monitor.run_id, state)
        self._last_checkpoint = time.monotonic()
        return path

    def _restore_rng(self, checkpoint: dict[str, Any]) -> None:
        """The global RNG state of the checkpoint: under data-parallel training this rank's
        own when the checkpoint holds one per rank of the same world size, else rank 0's
        (the single-process state), with a warning when the ranks' states differed."""
        torch.set_rng_state(checkpoint["rng"])
        rngs = checkpoint.get("rng_ranks")
        if self.dist is None or rngs is None:
            return
        if len(rngs) == self.dist.world_size:
            torch.set_rng_state(rngs[self.dist.rank])
        elif any(not torch.equal(r, rngs[0]) for r in rngs):
            warn_once("resume-rng-ranks", "the checkpoint holds the RNG states of %d ranks "
                      "and this run has %d: every rank continues from rank 0's (random "
                      "draws inside the model, such as dropout, differ from the run's)",
                      len(rngs), self.dist.world_size)

    # ---- running ---------------------------------------------------------------------
    def run(self, *, stop_at: int | None = None) -> RunResult:
        """Train. ``stop_at=k`` simulates an interruption before step ``k`` (for tests)."""
        try:
            with torch.random.fork_rng(devices=[]):
                return self._run(stop_at)
        finally:
            if self._scratch is not None:  # a rank other than 0: its private store goes
                self.store.close()
                self._scratch.cleanup()

    def _start(self) -> Monitor:
        """Build and check everything, then create the run (or reopen the resumed one)."""
        cfg = self.config
        try:
            self._build()
            self.store.check_writable()
        except BaseException:
            if self._run_id is not None:
                self.store.release(self._run_id)
            raise
        if self._run_id is None:
            self._run_id = self.store.create_run(cfg.to_dict(), name=cfg.name, seed=cfg.seed)
        else:
            self.store.clean_artifacts(self._run_id)
        monitor = None
        try:
            monitor = Monitor(self.model, loss_fn=self.task.loss, optimizer=self.optimizer,
                              probes=self.probes, every=cfg.every, total_steps=cfg.steps,
                              store=self.store, run_id=self._run_id, task=self.task,
                              seed=cfg.seed, flush_seconds=cfg.flush_seconds,
                              sinks=self.sinks)
            if self._checkpoint is not None:
                ck = self._checkpoint
                self.model.load_state_dict(ck["model"])
                self.optimizer.load_state_dict(ck["optimizer"])
                self.scheduler.load_state_dict(ck["scheduler"])
                self.sampler.load_state_dict(ck["sampler"])
                self._restore_rng(ck)
                monitor.load_state_dict(ck["monitor"])
            # rows written after the checkpoint (or by a run killed before its first one)
            self.store.truncate_metrics(self._run_id, monitor.step_index)
            self.store.set_status(self._run_id, "running")
        except BaseException as exc:
            self._fail(monitor, exc)
            raise
        return monitor

    def _run(self, stop_at: int | None) -> RunResult:
        monitor = self._start()
        run_id = self._run_id  # (the monitor of a rank other than 0 has none)
        status = self._loop(monitor, stop_at)
        try:
            summary = monitor.finish(status)
        except (OSError, sqlite3.Error) as exc:
            raise self._write_failed(monitor, exc) from None
        report = None
        if self.write_report:
            from trainlab.report import write_run_report

            try:
                report = write_run_report(self.store, run_id)
            except OSError as exc:
                self.store.clean_artifacts(run_id)  # no partial report left behind
                log.warning("run %s: the report was not written (%s); the run is kept, "
                            "`trainlab report %s` writes it later", run_id, _write_error(exc),
                            run_id)
        return RunResult(run_id, status, summary, report, self.store.root)

    def _fail(self, monitor: Monitor | None, exc: BaseException) -> None:
        """Record the run as failed with the reason, as far as the store still takes it."""
        run_id, reason = self._run_id, _write_error(exc)
        if isinstance(exc, LeaseLostError) or run_id is None:
            if monitor is not None:
                monitor.detach()
            return
        try:
            if monitor is not None:
                monitor.finish("failed", {"error": reason})
            else:
                self.store.set_status(run_id, "failed", {"error": reason})
        except (OSError, sqlite3.Error, TrainlabError) as second:
            log.warning("run %s: could not record its failure (%s)", run_id,
                        _write_error(second))
            if monitor is not None:
                monitor.detach()
            self.store.release(run_id)

    def _write_failed(self, monitor: Monitor, exc: BaseException) -> TrainlabError:
        self._fail(monitor, exc)
        return TrainlabError(f"run {self._run_id} failed: cannot write to the store "
                             f"({_write_error(exc)}); what was written before is kept")

    def _loop(self, monitor: Monitor, stop_at: int | None) -> str:
        cfg, task, run_id = self.config, self.task, self._run_id
        old_handlers = self._install_handlers()
        bar = _Progress(cfg.steps, self.progress)
        status = "completed"
        self._last_checkpoint = time.monotonic()
        try:
            first = monitor.step_index
            for k in range(first, cfg.steps + 1):
                timed = bool(cfg.checkpoint_seconds) and k > first and (
                    time.monotonic() - self._last_checkpoint >= cfg.checkpoint_seconds)
                lost, stop, timed = self._agree(
                    self.store.lease_lost(run_id),
                    self._stop or (stop_at is not None and k >= stop_at), timed)
                if lost:
                    raise LeaseLostError(f"run {run_id} was taken over by another process; "
                                         f"this process stops at step {k}")
                if stop:
                    self._save_checkpoint(monitor)
                    status = "interrupted"
                    break
                if timed:  # the state after k updates (the ranks agreed: all save here)
                    self._save_checkpoint(monitor)
                idx = self.sampler.next()
                if self.dist is not None:  # this rank's share of the global batch
                    idx = shard(torch.arange(len(task.x_train))[idx], self.dist)
                x, y = task.x_train[idx], task.y_train[idx]
                self.optimizer.zero_grad(set_to_none=True)
                loss = task.loss(self.train_model(x), y)
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
        except (OSError, sqlite3.Error) as exc:
            raise self._write_failed(monitor, exc) from None
        except BaseException as exc:
            self._fail(monitor, exc)
            raise
        finally:
            bar.close()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
        return status

    def _install_handlers(self) -> dict[int, Any]:
        """SIGINT and SIGTERM: the first stops at the next step with a checkpoint, the
        second stops at once (``KeyboardInterrupt``; the run is marked failed)."""
        if threading.current_thread() is not threading.main_thread():
            # Python delivers signals to the main thread only: say so instead of silently
            # running without the Ctrl-C/SIGTERM checkpoint
            warn_once("trainer-signals-thread",
                      "Trainer.run outside the main thread: Ctrl-C and SIGTERM are not "
                      "handled (no checkpoint on a signal); the time-based checkpoints "
                      "(checkpoint_seconds) still apply")
            return {}

        def handler(signum: int, frame: Any) -> None:
            if self._stop:
                raise KeyboardInterrupt
            self._stop = True

        return {sig: signal.signal(sig, handler)
                for sig in (getattr(signal, name) for name in _STOP_SIGNALS)}


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
