r"""Distribution of Adam's effective per-parameter step sizes.

Adam moves parameter :math:`j` by :math:`\eta_j \hat m_j` with the effective step size
:math:`\eta_j = \eta / (\sqrt{\hat v_j} + \epsilon)`, :math:`\hat v = v / (1 - \beta_2^t)`,
:math:`\hat m = m / (1 - \beta_1^t)` (Kingma & Ba, "Adam: A Method for Stochastic
Optimization", ICLR 2015). How widely these step sizes spread shows how much the
preconditioner reshapes the update; its quantiles are the summary.

Reads the state of ``torch.optim.Adam``/``AdamW`` and of optimizers that keep the same
``exp_avg_sq`` and ``step`` state keys (``max_exp_avg_sq`` when ``amsgrad``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainlab.errors import ConfigError
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


def adam_step_sizes(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """All effective step sizes :math:`\\eta/(\\sqrt{\\hat v}+\\epsilon)`, flattened, for
    parameters that have Adam state (empty when none has)."""
    out = []
    for group in optimizer.param_groups:
        if "betas" not in group or "eps" not in group:
            continue
        lr, (_, beta2), eps = float(group["lr"]), group["betas"], group["eps"]
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            v = state.get("max_exp_avg_sq") if group.get("amsgrad") else state.get("exp_avg_sq")
            if v is None or "step" not in state:
                continue
            t = float(state["step"])
            v_hat = v / (1.0 - beta2 ** t)
            out.append((lr / (v_hat.sqrt() + eps)).reshape(-1))
    return torch.cat(out) if out else torch.empty(0)


class AdamStepSize(Probe):
    """``adam_step/q<q>`` quantiles (default 5, 25, 50, 75, 95 %), ``adam_step/min`` and
    ``adam_step/max`` of the effective step sizes. Requires an Adam-family optimizer.

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
            return {}
        eta = adam_step_sizes(ctx.optimizer)
        if eta.numel() == 0:
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


PROBES.register("adam-step-size", AdamStepSize,
                metrics=("adam_step/*",),
                plot="log-curves", title="Adam's per-coordinate step sizes",
                summary="quantiles of Adam's effective per-parameter step size lr/(sqrt(v)+eps)")
