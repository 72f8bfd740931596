r"""The input-sensitivity probe: :func:`~trainlab.analyses.input_derivatives.input_derivatives`
(first, second and third derivatives of the loss per input variable) on the step's batch, and
the Spearman correlations between the orderings they give (Faroz 2024; papers.md row 25). The
two readings, the sources and their uncertainty are described in
:mod:`trainlab.analyses.input_derivatives`.
"""

from __future__ import annotations

import torch

from trainlab.analyses.input_derivatives import (
    input_derivatives,
    spearman,
)
from trainlab.errors import check_choice, check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext

PAIRS = ((1, 2), (1, 3), (2, 3))


def rank_correlations(scores: torch.Tensor) -> dict[str, torch.Tensor]:
    """Spearman correlations between the orderings of order ``(1,2)``, ``(1,3)``, ``(2,3)``."""
    return {f"{a}{b}": spearman(scores[a - 1], scores[b - 1]) for a, b in PAIRS}


def target_correlations(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(V,)``: Spearman correlation of each input variable with a real target."""
    x = inputs.reshape(len(inputs), -1)
    y = targets.reshape(-1)
    return torch.stack([spearman(x[:, j].double(), y.double()) for j in range(x.shape[1])])


class InputSensitivity(Probe):
    """``sensitivity/rank_corr_12``, ``_13``, ``_23`` (Spearman correlation between the
    variable orderings by first, second and third derivative), ``sensitivity/d<k>_mean``
    (mean sensitivity of order k over variables), ``sensitivity/d<k>_top`` (index of the most
    sensitive variable) and, for one real target per example,
    ``sensitivity/target_corr_<k>`` (Spearman correlation between the order-k sensitivities
    and the variables' absolute rank correlation with the target, the paper's comparison).
    Nothing for non-float inputs.

    Deviations from the paper: those of :mod:`trainlab.analyses.input_derivatives`: the paper's
    method section could not be read, so which derivative it ranks by, how it reduces over examples
    and whether it uses mixed derivatives are that module's stated choices (two readings, ``wrt``);
    only the first ``max_examples`` of the step's batch are used.

    Args:
        every: cadence.
        max_examples: examples of the batch used (the first ones).
        wrt: ``"inputs"`` or ``"weights"`` (first-layer weights), see the module docstring.
        chunk: basis directions per vectorized call.
    """

    name = "input-sensitivity"

    def __init__(self, every: int = 1, max_examples: int = 64, wrt: str = "inputs",
                 chunk: int = 64):
        super().__init__(every)
        check_range("max_examples", max_examples, low=1, owner="input-sensitivity")
        check_range("chunk", chunk, low=1, owner="input-sensitivity")
        check_choice("wrt", wrt, ("inputs", "weights"), owner="input-sensitivity")
        self.max_examples, self.wrt, self.chunk = max_examples, wrt, chunk

    def measure(self, ctx: ProbeContext) -> Measurement:
        x, y = ctx.batch
        if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
            kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            return ctx.skip(self.name, f"the inputs are not one floating-point tensor ({kind}): "
                            "derivatives in discrete inputs are undefined")
        if x[0].numel() < 2:
            return ctx.skip(self.name, "one input variable: there is no ordering to compare")
        x, y = x[:self.max_examples], y[:self.max_examples]
        scores = input_derivatives(ctx.model, ctx.loss_fn, x, y, wrt=self.wrt,
                                   chunk=self.chunk).scores()
        out: Measurement = {f"sensitivity/rank_corr_{k}": v
                            for k, v in rank_correlations(scores).items()}
        for k in range(3):
            out[f"sensitivity/d{k + 1}_mean"] = scores[k].mean()
            out[f"sensitivity/d{k + 1}_top"] = float(scores[k].argmax())
        if (isinstance(y, torch.Tensor) and torch.is_floating_point(y) and y.numel() == len(x)
                and len(x) >= 2):
            rho = target_correlations(x, y).abs()
            if bool(torch.isfinite(rho).all()):
                for k in range(3):
                    out[f"sensitivity/target_corr_{k + 1}"] = spearman(scores[k].double(), rho)
        return {k: v for k, v in out.items()
                if not (isinstance(v, torch.Tensor) and not bool(torch.isfinite(v)))}


PROBES.register("input-sensitivity", InputSensitivity, papers=(25,),
                metrics=("sensitivity/*",), plot="curves", title="Input sensitivity",
                summary="first/second/third-derivative sensitivity of the loss to each input "
                        "variable, with Spearman rank correlations between the orderings")
