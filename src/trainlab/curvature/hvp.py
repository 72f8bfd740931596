"""Hessian-vector products of a model's loss with ``torch.func`` (forward-over-reverse).

No ``create_graph`` graph is retained between products, the caller's ``.grad`` and module
mode are untouched, and any architecture that ``torch.func.functional_call`` can run works
(LayerNorm, attention, custom modules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

LossFn = Callable[[torch.Tensor, Any], torch.Tensor]


def trainable_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that require grad, detached, keyed by name (a snapshot of references)."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def flatten(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors.values()])


def unflatten(vec: torch.Tensor, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, i = {}, 0
    for name, t in like.items():
        out[name] = vec[i:i + t.numel()].view_as(t)
        i += t.numel()
    return out


def loss_function(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any
                  ) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """``params -> loss`` for a fixed batch, with the model's buffers held fixed."""
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    args = inputs if isinstance(inputs, tuple) else (inputs,)

    def f(params: dict[str, torch.Tensor]) -> torch.Tensor:
        return loss_fn(functional_call(model, (params, buffers), args), targets)

    return f


def make_hvp(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any,
             params: dict[str, torch.Tensor] | None = None
             ) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
    """Return ``(hvp, dim)``: ``hvp(v)`` multiplies a flat vector ``v`` by the Hessian of the
    batch loss at ``params`` (default: the model's current trainable parameters).

    A thin shortcut for ``HessianOperator(model, loss_fn, (inputs, targets), params,
    method="forward-over-reverse").matvec`` (no determinism check).
    """
    from trainlab.curvature.operators.hessian import HessianOperator

    op = HessianOperator(model, loss_fn, (inputs, targets), params,
                         method="forward-over-reverse", check_deterministic=False)
    return op.matvec, op.dim
