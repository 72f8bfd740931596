"""One Monitor step per optimizer step, from the micro-batches of an outside trainer.

Trainers such as ``lightning.Trainer`` and ``transformers.Trainer`` run one or more
forward/backward passes (micro-batches, with gradient accumulation) before each optimizer
step. :class:`OptimizerSteps` collects each micro-batch's share of the loss and its batch,
and when the trainer is about to step the optimizer (gradients complete, parameters not yet
updated) hands the Monitor one step: the summed loss (whose gradient the optimizer is about to
use) and the micro-batches joined into one batch. That keeps the Monitor's convention: what
is recorded at step ``k`` describes the parameters after ``k`` updates and the gradient
computed there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from trainlab.errors import ConfigError
from trainlab.log import LOGGER, warn_once
from trainlab.store import RunStore
from trainlab.train.monitor import Monitor

# the callbacks' default probes: cheap, any architecture, no loss function or task needed
DEFAULT_PROBES = "grad-norm,weight-norm,update-ratio,rotation"


def join_batches(batches: list[Any]) -> Any:
    """The micro-batches of one optimizer step as one batch: tensors concatenated along the
    first dimension, inside tuples, lists and dicts of the same structure. A batch of another
    kind cannot be joined: the last micro-batch is returned and a warning is logged (once
    per batch type)."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    try:
        if isinstance(first, torch.Tensor):
            return torch.cat(batches)
        if isinstance(first, (tuple, list)):
            return type(first)(join_batches([b[i] for b in batches]) for i in range(len(first)))
        if isinstance(first, dict):
            return {k: join_batches([b[k] for b in batches]) for k in first}
    except (RuntimeError, TypeError, KeyError, IndexError) as exc:
        warn_once(f"join-batches:{type(first).__name__}", "cannot join the %d micro-batches "
                  "of an optimizer step (%s); probes see the last micro-batch only",
                  len(batches), exc)
        return batches[-1]
    warn_once(f"join-batches:{type(first).__name__}", "cannot join micro-batches of type %s; "
              "probes see the last micro-batch only", type(first).__name__)
    return batches[-1]


class OptimizerSteps:
    """Holds the Monitor of an outside trainer's run and feeds it one step per optimizer step.

    Args:
        monitor_kwargs: keyword arguments of :class:`~trainlab.train.Monitor` (probes, every,
            probe_params, loss_fn, task, seed, sinks, tensorboard, name, config).
        store: a :class:`~trainlab.store.RunStore` or its directory; ``None`` keeps the numbers
            in the Monitor's ``history`` only.
        report: write the HTML run report at the end (needs a store).
        batch_fn: maps a micro-batch as the trainer gives it to what the probes receive as
            ``ctx.batch`` (e.g. ``lambda b: (b["x"], b["y"])``); identity by default.
    """

    def __init__(self, monitor_kwargs: dict[str, Any], store: RunStore | str | Path | None,
                 report: bool, batch_fn: Callable[[Any], Any] | None):
        self.monitor_kwargs = dict(monitor_kwargs)
        self._store_arg = store  # opened by start(), on rank 0 only under data parallelism
        self.store: RunStore | None = None
        if report and store is None:
            raise ConfigError("report=True needs a store (store=RunStore(...) or a directory)")
        self.write_report = report
        self.batch_fn = batch_fn
        self.monitor: Monitor | None = None
        self.report: Path | None = None
        self.summary: dict[str, Any] | None = None
        self._losses: list[torch.Tensor] = []
        self._batches: list[Any] = []

    def start(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              last_step: int | None, config: dict[str, Any], first_step: int = 0) -> Monitor:
        """Build the Monitor (and the run in the store; under data-parallel training the
        store is opened on rank 0 only). ``last_step``: the last step the
        trainer will measure (one less than its number of optimizer steps), always measured;
        ``first_step``: the updates already applied when the trainer resumed from its own
        checkpoint (the steps are numbered from there; a new run is recorded, and the
        probes that compare with the initial parameters take those at ``first_step``)."""
        from trainlab.train.distributed import current

        kw = dict(self.monitor_kwargs)
        kw["config"] = {**config, **(kw.get("config") or {}), "first_step": first_step}
        store, group = self._store_arg, current()
        if group is not None and not group.is_main:  # rank 0 alone opens and writes it
            self.store = None
        else:
            self.store = store if store is None or isinstance(store, RunStore) else RunStore(store)
        self.monitor = Monitor(model, optimizer=optimizer, total_steps=last_step,
                               store=self.store, **kw)
        if first_step:
            LOGGER.info("trainer resumed after %d updates: a new run %s from step %d; distances "
                        "from init are measured from the parameters there", first_step,
                        self.monitor.run_id, first_step)
            self.monitor.step_index = first_step
            self.monitor._arm(first_step)  # the probes' hooks, for the step now coming
        return self.monitor

    def micro_batch(self, batch: Any) -> None:
        """Keep one micro-batch (through ``batch_fn``). A list, as a ``DataLoader`` collates
        ``(inputs, targets)`` pairs, becomes a tuple: probes and curvature operators read a
        tuple as one ``(inputs, targets)`` batch and a list as several batches."""
        batch = batch if self.batch_fn is None else self.batch_fn(batch)
        self._batches.append(tuple(batch) if isinstance(batch, list) else batch)

    def loss(self, share: torch.Tensor) -> None:
        """Add one micro-batch's share of the optimizer step's loss."""
        self._losses.append(share.detach())

    def optimizer_step(self, loss_over_ranks: str = "mean") -> bool:
        """Record one Monitor step; False when the loss is not finite (the run diverged).
        ``loss_over_ranks``: see :meth:`~trainlab.train.Monitor.step`."""
        if self.monitor is None:
            raise RuntimeError("the callback's monitor was not started")
        if not self._losses:
            raise ConfigError("no loss was seen before the optimizer step (manual "
                              "optimization, or a loss computed outside the model's forward, "
                              "is not supported)")
        loss = torch.stack(self._losses).sum() if len(self._losses) > 1 else self._losses[0]
        batch = join_batches(self._batches) if self._batches else None
        self._losses, self._batches = [], []
        return self.monitor.step(loss, batch, loss_over_ranks=loss_over_ranks)

    def finish(self, status: str) -> dict[str, Any] | None:
        """Finish the Monitor with ``status`` (once) and write the report if asked."""
        mon = self.monitor
        if mon is None or self.summary is not None:
            return self.summary
        self.summary = mon.finish(status)
        # under data-parallel training only rank 0's monitor has a run (and writes a report)
        if self.write_report and self.store is not None and mon.run_id is not None:
            from trainlab.report import write_run_report

            self.report = write_run_report(self.store, mon.run_id)
            LOGGER.info("trainlab report: %s", self.report)
        return self.summary


class MonitorCallback:
    """The part the trainers' callbacks share: their arguments and their results.

    Args:
        probes: a probe spec (``trainlab list probes``); the default needs no ``loss_fn``
            and no task. Curvature probes need ``loss_fn`` (and a ``batch_fn`` giving them
            ``(inputs, targets)``), evaluation probes ``task``.
        every, probe_params, seed: as for :class:`~trainlab.train.Monitor`.
        loss_fn: ``loss_fn(model(inputs), targets)``, for probes that recompute the loss on
            ``ctx.batch`` (sharpness, Hessian spectra, ...).
        batch_fn: maps one micro-batch, as the trainer gives it, to what probes receive as
            ``ctx.batch``; default: the micro-batch itself.
        store: a :class:`~trainlab.store.RunStore` or its directory (``None``: the numbers
            stay in ``self.monitor.history`` only).
        report: write the HTML run report when training ends (when there is a store).
        name, config: the run's label and the configuration recorded with it (the callback
            adds the model and optimizer classes and the trainer's step settings).
        tensorboard, sinks: more outputs of the Monitor (see :mod:`trainlab.integrations`).
        task: the trainlab task, for evaluation probes.

    After training: ``monitor`` (its ``history``), ``run_id``, ``summary``, ``report`` (the
    report's path) and ``status``.
    """

    def __init__(self, *, probes: str | list[Any] = DEFAULT_PROBES, every: int = 50,
                 probe_params: dict[str, dict[str, Any]] | None = None,
                 loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
                 batch_fn: Callable[[Any], Any] | None = None,
                 store: RunStore | str | Path | None = None, report: bool = True,
                 name: str = "", config: dict[str, Any] | None = None,
                 tensorboard: str | Path | None = None, sinks: Sequence[Any] = (),
                 task: Any = None, seed: int = 0):
        super().__init__()
        self._steps = OptimizerSteps(
            {"probes": probes, "every": every, "probe_params": probe_params,
             "loss_fn": loss_fn, "name": name, "config": config, "tensorboard": tensorboard,
             "sinks": sinks, "task": task, "seed": seed},
            store, report and store is not None, batch_fn)
        self.status = "completed"

    @property
    def monitor(self) -> Monitor | None:
        return self._steps.monitor

    @property
    def run_id(self) -> str | None:
        return None if self._steps.monitor is None else self._steps.monitor.run_id

    @property
    def summary(self) -> dict[str, Any] | None:
        return self._steps.summary

    @property
    def report(self) -> Path | None:
        return self._steps.report
