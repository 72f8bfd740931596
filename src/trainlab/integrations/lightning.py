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

from typing import Any

import lightning.pytorch as pl
import torch

from trainlab.errors import ConfigError
from trainlab.integrations._optimizer_steps import MonitorCallback


class TrainlabCallback(MonitorCallback, pl.Callback):
    """Probes, the run store, TensorBoard curves and the report for a ``lightning.Trainer``.

    Arguments and results: :class:`~trainlab.integrations._optimizer_steps.MonitorCallback`.
    """

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
            "gradient_clip_val": trainer.gradient_clip_val}, first_step=trainer.global_step)
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
