r"""Initial guessing bias: how much an untrained network favours one class ("Initial Guessing
Bias: How Untrained Networks Favor Some Classes", Francazi, Lucchi & Baity-Jesi, ICML 2024,
papers.md row 16).

The measure is the fraction of inputs assigned to the most frequent predicted class,
:math:`G_{max}` (for two classes, the paper's :math:`G_0` folded around 1/2). Without bias it
concentrates at :math:`1/C` for balanced inputs; with bias it is spread out and piles up near 1.
The paper finds that the activation, max-pooling and input mean shifts create the bias and that
depth amplifies it; :func:`guessing_bias_distribution` measures it over many initializations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from trainlab.errors import check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.restore import preserved


@dataclass(frozen=True)
class GuessingBias:
    """Predicted-class fractions on a set of inputs.

    Attributes:
        class_fractions: fraction of inputs predicted as each class (sums to 1).
        max_fraction: the largest of them (:math:`G_{max}`).
        entropy_ratio: entropy of the fractions over :math:`\\ln C` (1 = no bias).
    """

    class_fractions: tuple[float, ...]
    max_fraction: float
    entropy_ratio: float


def predicted_class_fractions(model: nn.Module, inputs: torch.Tensor, num_classes: int | None = None
                              ) -> torch.Tensor:
    """Fractions of ``inputs`` assigned to each class by ``argmax`` of the model's outputs,
    in eval mode without gradients (mode and RNG restored)."""
    with preserved(model), torch.no_grad():
        model.eval()
        logits = model(inputs)
    c = num_classes or logits.shape[-1]
    counts = torch.bincount(logits.argmax(dim=-1).reshape(-1), minlength=c).to(torch.float64)
    return counts / counts.sum()


def guessing_bias(model: nn.Module, inputs: torch.Tensor) -> GuessingBias:
    """:class:`GuessingBias` of ``model`` on ``inputs``."""
    frac = predicted_class_fractions(model, inputs)
    c = frac.numel()
    nz = frac[frac > 0]
    ent = float(-(nz * nz.log()).sum()) / float(torch.log(torch.tensor(float(c)))) if c > 1 else 1.0
    return GuessingBias(tuple(frac.tolist()), float(frac.max()), ent)


def guessing_bias_distribution(build: Callable[[torch.Generator], nn.Module], inputs: torch.Tensor,
                               seeds: int = 50) -> torch.Tensor:
    """:math:`G_{max}` for ``seeds`` initializations: ``build(generator)`` returns a freshly
    initialized model for each seed ``0 .. seeds-1``."""
    check_range("seeds", seeds, low=1, owner="guessing_bias_distribution")
    out = []
    for s in range(seeds):
        model = build(torch.Generator().manual_seed(s))
        out.append(guessing_bias(model, inputs).max_fraction)
    return torch.tensor(out, dtype=torch.float64)


class GuessingBiasProbe(Probe):
    """``igb_max_fraction`` and ``igb_entropy_ratio`` of the model's predictions on this step's
    batch inputs (the initial guessing bias of papers.md row 16, tracked through training).

    Deviations from the paper: :math:`G_{max}` (the largest class fraction) generalizes the paper's
    two-class :math:`G_0` to :math:`C` classes, and the entropy ratio is this library's addition;
    the probe measures one network on this step's batch inputs, while the paper's statement is about
    the distribution over initializations (:func:`guessing_bias_distribution`). The paper's text was
    not re-read for this paragraph.
    """

    name = "guessing-bias"

    def measure(self, ctx: ProbeContext) -> Measurement:
        x, _ = ctx.batch
        gb = guessing_bias(ctx.model, x)
        return {"igb_max_fraction": gb.max_fraction, "igb_entropy_ratio": gb.entropy_ratio}


PROBES.register("guessing-bias", GuessingBiasProbe, papers=(16,),
                metrics=("igb_max_fraction", "igb_entropy_ratio"),
                plot="curves", title="Initial guessing bias",
                summary="initial guessing bias: fraction of inputs given the dominant class")
