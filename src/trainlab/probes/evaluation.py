"""Loss and metrics on the full train and test sets."""

from __future__ import annotations

import torch

from trainlab.probes._outputs import logits
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.restore import preserved


class Evaluation(Probe):
    """``train/<metric>`` and ``test/<metric>`` of the task on its whole train and test sets,
    in eval mode and without gradients (the caller's mode is restored). Large sets are
    evaluated in chunks of ``chunk`` examples; the task's metrics read the logits of the
    model's output (:func:`~trainlab.probes._outputs.logits`)."""

    name = "eval"

    def __init__(self, every: int = 1, chunk: int = 8192):
        super().__init__(every)
        self.chunk = chunk

    def _on(self, ctx: ProbeContext, x: torch.Tensor, y: torch.Tensor, prefix: str
            ) -> Measurement:
        outs = [logits(ctx.model(x[i:i + self.chunk])) for i in range(0, len(x), self.chunk)]
        metrics = ctx.task.metrics(torch.cat(outs), y)
        return {f"{prefix}/{k}": v for k, v in metrics.items()}

    def measure(self, ctx: ProbeContext) -> Measurement:
        if ctx.task is None:
            return ctx.skip(self.name, "no task was given to the monitor (evaluation needs its "
                            "train and test sets)")
        t = ctx.task
        with preserved(ctx.model), torch.inference_mode():
            ctx.model.eval()
            out = self._on(ctx, t.x_train, t.y_train, "train")
            out.update(self._on(ctx, t.x_test, t.y_test, "test"))
        return out


PROBES.register("eval", Evaluation, ddp="replicated",
                metrics=("train/*", "test/*"), compare=("test/*", "train/*"),
                summary="loss and metrics on the full train and test sets")
