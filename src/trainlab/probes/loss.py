"""The batch loss of the step (free: the training loop already computed it)."""

from __future__ import annotations

from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


class Loss(Probe):
    """``loss``: the batch loss at the pre-step parameters, as the training loop computed it."""

    name = "loss"

    def measure(self, ctx: ProbeContext) -> Measurement:
        if ctx.loss is None:
            return ctx.skip(self.name, "the context has no loss")
        return {"loss": ctx.loss.detach()}


PROBES.register("loss", Loss, ddp="replicated",
                metrics=("loss",),
                summary="the step's batch loss (as computed by the training loop)")
