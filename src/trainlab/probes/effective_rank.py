r"""Effective rank of the weight change :math:`W_t - W_0` of each layer.

"Transformers learn through gradual rank increase" (Boix-Adsera, Littwin, Abbe, Bengio,
Susskind, 2023; papers.md row 71) shows the difference between trained and initial weights
growing in rank step by step when the initialization is small. The rank is measured here by
the entropy effective rank of Roy & Vetterli ("The effective rank: a measure of effective
dimensionality", 2007): with :math:`p_k = \sigma_k / \sum_j \sigma_j` the normalized
singular values, :math:`\mathrm{erank} = \exp(-\sum_k p_k \log p_k)`, a smooth count between
1 and the matrix rank.

Deviation: the paper counts singular values of the learned perturbation on its plots; the
entropy effective rank is a threshold-free version of that count.
"""

from __future__ import annotations

import torch

from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


def as_matrix(weight: torch.Tensor) -> torch.Tensor:
    """A weight tensor as a matrix ``(out, rest)`` (convolution kernels are flattened), in
    float32 when the weight is half precision (float16/bfloat16): probe arithmetic on a
    mixed-precision model is done in float32 (CPU linear algebra has no half kernels, and
    half-precision sums of squares lose most of their digits)."""
    m = weight.reshape(weight.shape[0], -1)
    return m.float() if m.dtype in (torch.float16, torch.bfloat16) else m


def effective_rank(matrix: torch.Tensor) -> torch.Tensor:
    """Roy & Vetterli's entropy effective rank of a matrix (0 for the zero matrix)."""
    s = torch.linalg.svdvals(as_matrix(matrix))
    total = s.sum()
    if total == 0:
        return torch.zeros((), dtype=s.dtype, device=s.device)
    p = s / total
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum())


class EffectiveRank(Probe):
    """``effective_rank/<name>``: effective rank of :math:`W_t - W_0` for every parameter
    tensor with at least 2 dimensions (``ctx.init_params`` holds :math:`W_0`)."""

    name = "effective-rank"

    def measure(self, ctx: ProbeContext) -> Measurement:
        return {f"effective_rank/{n}": effective_rank(w - ctx.init_params[n])
                for n, w in ctx.params().items() if w.dim() >= 2 and n in ctx.init_params}


PROBES.register("effective-rank", EffectiveRank, ddp="replicated", papers=(71,),
                metrics=("effective_rank/*",), plot="curves", title="Effective rank per layer",
                summary="entropy effective rank (Roy & Vetterli) of W_t - W_0 per layer")
