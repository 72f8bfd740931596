r"""Distribution of Adam's effective per-parameter step sizes.

Adam moves parameter :math:`j` by :math:`\eta_j \hat m_j` with the effective step size
:math:`\eta_j = \eta / (\sqrt{\hat v_j} + \epsilon)`, :math:`\hat v = v / (1 - \beta_2^t)`,
:math:`\hat m = m / (1 - \beta_1^t)` (Kingma & Ba, "Adam: A Method for Stochastic
Optimization", ICLR 2015). How widely these step sizes spread shows how much the
preconditioner reshapes the update; its quantiles are the summary.

Reads the optimizer's state through :func:`~trainlab.curvature.optimizer_sharpness.
adaptive_denominator`: torch's Adam, AdamW and RMSprop and trainlab's AdEMAMix (the
denominator shared by both of its EMAs), diffGrad (the friction of the coming update
included, :math:`\eta\xi_j/(\sqrt{\hat v_j}+\epsilon)`), Optimistic-AMSGrad
(:math:`\eta/(\sqrt{\hat v_j}+\epsilon)` with its running maximum, no bias correction) and
Riemannian Adam on Euclidean groups. For other optimizers the probe measures nothing and
records why.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainlab.curvature.optimizer_sharpness import adaptive_denominator, preconditioner_kind
from trainlab.errors import ConfigError
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


def adam_step_sizes(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    r"""All effective step sizes :math:`\eta/D` (``D`` the optimizer's adaptive denominator,
    e.g. Adam's :math:`\sqrt{\hat v}+\epsilon`), flattened, for the parameters that have
    state (empty when none has).

    Raises:
        ConfigError: an optimizer without a known adaptive denominator (or plain SGD, whose
            step size is its learning rate).
    """
    if preconditioner_kind(optimizer) == "sgd":
        raise ConfigError("SGD has no adaptive step size: every entry moves by lr times its "
                          "(momentum) gradient.")
    out = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            if not optimizer.state.get(p):
                continue
            _, denom, _ = adaptive_denominator(optimizer, p, group)
            out.append((float(group["lr"]) / denom).reshape(-1))
    return torch.cat(out) if out else torch.empty(0)


class AdamStepSize(Probe):
    """``adam_step/q<q>`` quantiles (default 5, 25, 50, 75, 95 %), ``adam_step/min`` and
    ``adam_step/max`` of the effective step sizes. Requires an adaptive optimizer (see the
    module docstring); for others it records why it measured nothing.

    Args:
        every: cadence.
        quantiles: in (0, 1).
        max_values: quantiles use a random subset of this many entries when there are more.
    """

    name = "adam-step-size"

    def __init__(self, every: int = 1, quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75,
                                                                     0.95),
                 max_values: int = 1 << 22):
        super().__init__(every)
        if not all(0 < q < 1 for q in quantiles):
            raise ConfigError(f"adam-step-size: quantiles must be in (0, 1). Got "
                              f"{list(quantiles)!r} instead.")
        self.quantiles, self.max_values = tuple(quantiles), max_values

    def measure(self, ctx: ProbeContext) -> Measurement:
        if ctx.optimizer is None:
            return ctx.skip(self.name, "no optimizer was given to the monitor")
        try:
            eta = adam_step_sizes(ctx.optimizer)
        except ConfigError as exc:
            return ctx.skip(self.name, str(exc))
        if eta.numel() == 0:  # before the first update: no state yet
            return {}
        sample = eta
        if eta.numel() > self.max_values:
            idx = torch.randint(eta.numel(), (self.max_values,), generator=ctx.generator)
            sample = eta[idx.to(eta.device)]
        qs = torch.quantile(sample.double(), torch.tensor(self.quantiles, dtype=torch.float64,
                                                          device=sample.device))
        out: Measurement = {f"adam_step/q{round(q * 100):02d}": v
                            for q, v in zip(self.quantiles, qs)}
        out["adam_step/min"], out["adam_step/max"] = eta.min(), eta.max()
        return out


PROBES.register("adam-step-size", AdamStepSize, ddp="replicated",
                metrics=("adam_step/*",),
                plot="log-curves", title="Adam's per-coordinate step sizes",
                summary="quantiles of Adam's effective per-parameter step size lr/(sqrt(v)+eps)")
