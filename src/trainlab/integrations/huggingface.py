"""Hugging Face ``transformers``: a ``TrainerCallback`` that attaches a trainlab Monitor to
the model a ``transformers.Trainer`` trains.

Example::

    from trainlab.integrations.huggingface import TrainlabCallback

    cb = TrainlabCallback(probes="grad-norm,update-ratio,weight-norm", every=10,
                          store="trainlab-runs", tensorboard="tb/hf-run")
    Trainer(model=model, args=args, train_dataset=ds, callbacks=[cb]).train()
    cb.summary, cb.report, cb.monitor.history

Step convention (the Monitor's): one Monitor step per optimizer step, recorded in
``on_pre_optimizer_step``: the parameters are those after ``k`` updates, the gradients the
accumulated gradients of all micro-batches of update ``k + 1``. The loss is read from the
model's output (``output.loss``, a forward hook on the model, training-mode passes only) and
combined as the Trainer back-propagates it: a micro-batch loss the model already normalized
over the whole accumulated batch (the Trainer passed ``num_items_in_batch``) is summed, any
other is averaged over the micro-batches of the step. ``ctx.batch`` is the micro-batches'
model inputs (a dict of tensors), joined.

Gradient clipping (``max_grad_norm``, 1.0 by default in ``TrainingArguments``): the Trainer
clips *before* ``on_pre_optimizer_step``, so the probes measure the clipped gradients (what
the optimizer uses); set ``max_grad_norm=0`` to measure raw gradients (the Trainer then logs
the same pre-clip norm it always logs).

Data parallelism (the Trainer launched in several processes, e.g. by ``torchrun`` or
``accelerate launch``): the Monitor records the global batch's numbers and rank 0 alone writes
the store and the report (:mod:`trainlab.train.distributed`). With
``average_tokens_across_devices`` (the default) the model normalizes each rank's loss by the
tokens of all ranks, and the global loss is the sum of the ranks' losses; otherwise it is
their example-weighted mean.

The Trainer makes no optimizer step after its last one: with ``max_steps=T`` the recorded
steps are ``0 .. T-1`` and step ``T-1`` (the last one seen) gets every probe.

Not supported (a one-line error): a loss the model does not return (``compute_loss_func``,
label smoothing, an overridden ``compute_loss``), which the callback cannot see.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers

from trainlab.integrations._optimizer_steps import MonitorCallback


class TrainlabCallback(MonitorCallback, transformers.TrainerCallback):
    """Probes, the run store, TensorBoard curves and the report for a ``transformers.Trainer``.

    Arguments and results: :class:`~trainlab.integrations._optimizer_steps.MonitorCallback`.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._hook: Any = None
        self._normalized: list[torch.Tensor] = []  # losses already scaled for accumulation
        self._means: list[torch.Tensor] = []  # per-micro-batch mean losses

    def _on_forward(self, module: torch.nn.Module, args: tuple[Any, ...],
                    kwargs: dict[str, Any], output: Any) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return  # evaluation and prediction passes
        loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
        if loss is None:
            return
        normalized = kwargs.get("num_items_in_batch") is not None
        (self._normalized if normalized else self._means).append(loss.detach())
        self._steps.micro_batch({k: v for k, v in kwargs.items() if k != "num_items_in_batch"})

    # ---- TrainerCallback events --------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        self._steps.start(model, optimizer, state.max_steps - 1, {
            "integration": "transformers", "model": type(model).__name__,
            "optimizer": type(optimizer).__name__, "max_steps": state.max_steps,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "max_grad_norm": args.max_grad_norm, "learning_rate": args.learning_rate},
            first_step=state.global_step)
        self._hook = model.register_forward_hook(self._on_forward, with_kwargs=True)
        self.status = "completed"

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        parts = list(self._normalized)
        # under data parallelism with average_tokens_across_devices, the model normalized
        # each rank's loss by the tokens of all ranks: the global loss is their sum
        shares = bool(self._normalized) and args.average_tokens_across_devices
        if self._means:
            parts.append(torch.stack(self._means).sum() / len(self._means))
        self._normalized, self._means = [], []
        for part in parts:
            self._steps.loss(part)
        if not self._steps.optimizer_step("sum" if shares else "mean"):
            self.status = "diverged"
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        self.finish(self.status)

    def finish(self, status: str = "failed") -> dict[str, Any] | None:
        """Remove the forward hook, finish the Monitor and write the report. The Trainer
        has no event for an exception: call ``cb.finish("failed")`` (or ``"interrupted"``)
        when ``trainer.train()`` raises. A second call does nothing."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        return self._steps.finish(status)
