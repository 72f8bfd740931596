"""PyTorch Lightning: a callback that attaches a trainlab Monitor to any ``LightningModule``.

Example::

    from trainlab.integrations.lightning import TrainlabCallback

    cb = TrainlabCallback(probes="grad-norm,update-ratio,sharpness@50", every=10,
                          loss_fn=F.cross_entropy, store="trainlab-runs", tensorboard="tb/run1")
    lightning.Trainer(max_steps=1000, callbacks=[cb]).fit(module, loader)
    cb.summary, cb.report, cb.monitor.history

Step convention (the Monitor's): one Monitor step per optimizer step. At step ``k`` the
parameters are those after ``k`` updates, the gradients are the accumulated gradients of all
micro-batches of update ``k + 1`` (read in ``on_before_optimizer_step``, after every
backward and before the update), the loss is the sum of the losses Lightning back-propagated
for them (Lightning divides each micro-batch's loss by ``accumulate_grad_batches``, so this is
their mean) and ``ctx.batch`` is the micro-batches joined. With ``accumulate_grad_batches=N``
there is one Monitor step per ``N`` batches.

Gradient clipping (``gradient_clip_val``): Lightning clips right after the
``on_before_optimizer_step`` hooks, so the probes measure the gradients *before* clipping
(the raw gradients; the update uses the clipped ones). Under 16-bit mixed precision with a
gradient scaler, the gradients are already unscaled there and the loss is unscaled here.

Lightning makes no optimizer step after the last one it counts: with ``max_steps=T`` the
recorded steps are ``0 .. T-1`` and step ``T-1`` (the last one seen) gets every probe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from trainlab.errors import ConfigError
from trainlab.integrations._optimizer_steps import OptimizerSteps
from trainlab.store import RunStore

DEFAULT_PROBES = "grad-norm,weight-norm,update-ratio,rotation"


class TrainlabCallback(pl.Callback):
    """Probes, the run store, TensorBoard curves and the report for a ``lightning.Trainer``.

    Args:
        probes: a probe spec (``trainlab list probes``); the default needs no ``loss_fn``
            and no task. Curvature probes need ``loss_fn``, evaluation probes ``task``.
        every, probe_params, seed: as for :class:`~trainlab.train.Monitor`.
        loss_fn: ``loss_fn(module(inputs), targets)``, for probes that recompute the loss
            on ``ctx.batch`` (sharpness, Hessian spectra, ...).
        batch_fn: maps a training batch to the probes' ``(inputs, targets)``; default: the
            batch as the dataloader gives it.
        store: a :class:`~trainlab.store.RunStore` or its directory (``None``: numbers in
            ``self.monitor.history`` only).
        report: write the HTML run report when training ends (needs ``store``).
        name, config: the run's label and the configuration recorded with it (the callback
            adds the module and optimizer classes and the trainer's step settings).
        tensorboard, sinks: more outputs of the Monitor (see :mod:`trainlab.integrations`).
        task: the trainlab task, for evaluation probes.

    After training: ``self.monitor`` (history), ``self.run_id``, ``self.summary``,
    ``self.report`` (the report's path).
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

    # the results, once training ran
    @property
    def monitor(self):
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

    # ---- Lightning hooks ---------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not pl_module.automatic_optimization:
            raise ConfigError("TrainlabCallback needs automatic optimization "
                              "(LightningModule.automatic_optimization=True)")
        if len(trainer.optimizers) != 1:
            raise ConfigError(f"TrainlabCallback supports one optimizer, the module "
                              f"configures {len(trainer.optimizers)}")
        optimizer = trainer.optimizers[0]
        total = trainer.max_steps if trainer.max_steps > 0 else trainer.estimated_stepping_batches
        last = int(total) - 1 if total != float("inf") else None
        self._steps.start(pl_module, optimizer, last, {
            "integration": "lightning", "module": type(pl_module).__name__,
            "optimizer": type(optimizer).__name__, "max_steps": trainer.max_steps,
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
            "gradient_clip_val": trainer.gradient_clip_val})
        self.status = "completed"

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        self._steps.micro_batch(batch)

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           loss: torch.Tensor) -> None:
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is not None and scaler.is_enabled():
            loss = loss.detach() / scaler.get_scale()
        self._steps.loss(loss)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if not self._steps.optimizer_step():
            self.status = "diverged"
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._steps.finish(self.status)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        self._steps.finish("interrupted" if isinstance(exception, KeyboardInterrupt)
                           else "failed")
