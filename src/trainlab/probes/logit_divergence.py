r"""Output-logit divergence: how far the output logits drift from normalized log-probabilities.

Wortsman et al. (2023; papers.md row 98) identify a second instability in which the softmax
normalizer :math:`Z = \sum_c e^{z_c}` of the output logits drifts, :math:`\log Z` moving far
from 0 and the loss becoming insensitive to it; the z-loss :math:`10^{-4}\log^2 Z` keeps it in
check. This probe reports :math:`\log Z` statistics of the model's outputs on the batch.
"""

from __future__ import annotations

import torch

from trainlab.probes._outputs import call, logits
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.restore import preserved


class LogitDivergence(Probe):
    """``logit/log_z_mean``, ``logit/log_z_abs_max``, ``logit/z_loss`` (mean
    :math:`\\log^2 Z`) and ``logit/abs_max`` (largest absolute logit), over all output
    positions of this step's batch (classification outputs, classes on the last axis; the
    logits are read from the model's output by :func:`~trainlab.probes._outputs.logits`:
    a tensor, a ``logits`` entry or attribute, or a tuple's first tensor).

    Deviations from the paper: the probe only measures (log Z statistics of this step's outputs);
    ``logit/z_loss`` is the mean of :math:`\\log^2 Z` without the z-loss coefficient. Which
    statistic the paper plots for the divergence was not re-read for this paragraph.
    """

    name = "logit-divergence"

    def measure(self, ctx: ProbeContext) -> Measurement:
        with preserved(ctx.model), torch.no_grad():
            z = logits(call(ctx.model, ctx.batch[0]))
        log_z = torch.logsumexp(z, dim=-1)
        return {"logit/log_z_mean": log_z.mean(), "logit/log_z_abs_max": log_z.abs().max(),
                "logit/z_loss": log_z.pow(2).mean(), "logit/abs_max": z.abs().max()}


PROBES.register("logit-divergence", LogitDivergence, papers=(98,),
                metrics=("logit/*",), plot="curves", title="Logit growth",
                summary="output-logit divergence: log Z of the softmax normalizer, z-loss value")
