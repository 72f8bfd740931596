r"""Attention-logit growth: the largest pre-softmax attention logit of each attention layer.

Wortsman et al., "Small-scale proxies for large-scale Transformer training instabilities"
(2023; papers.md row 98) trace one instability to attention logits that grow until the
softmax collapses to one-hot ("attention entropy collapse"); qk-layernorm prevents it. The
probe reads every module that exposes ``attention_logits(x)`` (trainlab's
:class:`~trainlab.models.transformer.CausalSelfAttention`), capturing its input with a
forward pre-hook during one no-grad forward pass; hooks are removed afterwards.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainlab.probes._outputs import call
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.restore import preserved


def max_attention_logits(model: nn.Module, inputs: Any) -> dict[str, torch.Tensor]:
    """``{module name: max finite attention logit}`` over the batch, heads and positions."""
    layers = {n: m for n, m in model.named_modules() if hasattr(m, "attention_logits")}
    seen: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_pre_hook(
        lambda _m, args, n=n: seen.setdefault(n, args[0])) for n, m in layers.items()]
    try:
        with preserved(model), torch.no_grad():
            call(model, inputs)
            out = {}
            for n, x in seen.items():
                logits = layers[n].attention_logits(x)
                out[n] = logits[torch.isfinite(logits)].max()
    finally:
        for h in handles:
            h.remove()
    return out


class AttentionLogits(Probe):
    """``attn_logit_max/<layer>`` per attention layer and ``attn_logit_max`` over all
    (nothing when the model has no attention layer).

    Deviations from the paper: the statistic is the largest pre-softmax logit per layer (and over
    layers) on this step's batch, read only from modules that expose ``attention_logits``
    (trainlab's own attention); whether the paper tracks the maximum or another statistic of the
    logits was not re-read for this paragraph.
    """

    name = "attention-logits"

    def measure(self, ctx: ProbeContext) -> Measurement:
        per = max_attention_logits(ctx.model, ctx.batch[0])
        out: Measurement = {f"attn_logit_max/{n}": v for n, v in per.items()}
        if not per:
            return ctx.skip(self.name, "the model has no module with attention_logits(x) "
                            "(trainlab's CausalSelfAttention)")
        out["attn_logit_max"] = torch.stack(list(per.values())).max()
        return out


PROBES.register("attention-logits", AttentionLogits, papers=(98,),
                metrics=("attn_logit_max", "attn_logit_max/*"),
                plot="curves", title="Attention logits",
                summary="largest pre-softmax attention logit per attention layer")
