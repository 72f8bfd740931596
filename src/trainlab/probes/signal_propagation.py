r"""Signal propagation: per-layer statistics of the forward activations and of the backward
gradients with respect to them, on this step's batch.

For every leaf module (a layer with no submodules: Linear, activation, normalization, ...)
the probe reports the mean and standard deviation of its output, and the root mean square of
the loss gradient with respect to that output. Vanishing or exploding values along depth are
the signal-propagation failures that initialization schemes are designed to prevent
(Poole et al. 2016; Schoenholz et al. 2017). Hooks are attached for one forward pass and
removed; mode, grads and RNG are restored.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainlab.probes._outputs import call
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.restore import preserved


def leaf_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Named modules without children (the layers a forward pass goes through)."""
    return [(n, m) for n, m in model.named_modules() if n and not list(m.children())]


def layer_signals(model: nn.Module, loss_fn: Any, inputs: Any, targets: Any
                  ) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """``{layer: (output, d loss / d output)}`` for every leaf layer's (first) output
    tensor; the gradient is None where the loss does not depend on that output."""
    outs: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in leaf_layers(model):
        def hook(_m: nn.Module, _a: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor) and name not in outs:
                outs[name] = out
        handles.append(module.register_forward_hook(hook))
    try:
        with preserved(model), torch.enable_grad():
            loss = loss_fn(call(model, inputs), targets)
            names = [n for n, o in outs.items() if o.requires_grad]
            grads = torch.autograd.grad(loss, [outs[n] for n in names], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    g = dict(zip(names, grads))
    return {n: (o.detach(), None if g.get(n) is None else g[n].detach()) for n, o in outs.items()}


class SignalPropagation(Probe):
    """``act_mean/<layer>``, ``act_std/<layer>`` and ``act_grad_rms/<layer>`` for every leaf
    layer, at the current parameters on this step's batch."""

    name = "signal-propagation"

    def measure(self, ctx: ProbeContext) -> Measurement:
        x, y = ctx.batch
        out: Measurement = {}
        for n, (a, g) in layer_signals(ctx.model, ctx.loss_fn, x, y).items():
            out[f"act_mean/{n}"] = a.mean()
            out[f"act_std/{n}"] = a.std() if a.numel() > 1 else torch.zeros((), dtype=a.dtype)
            if g is not None:
                out[f"act_grad_rms/{n}"] = g.pow(2).mean().sqrt()
        return out


PROBES.register("signal-propagation", SignalPropagation,
                metrics=("act_mean/*", "act_std/*", "act_grad_rms/*"),
                plot="curves", title="Signal propagation",
                summary="per-layer activation mean/std and gradient RMS (forward/backward signal)")
