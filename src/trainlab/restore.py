"""A context manager that gives the caller's model back exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def preserved(model: nn.Module, *, weights: bool = False, rng: bool = True) -> Iterator[None]:
    """Restore train/eval mode of every submodule, the ``.grad`` tensors (by reference and
    value), the values of the buffers (a forward pass in training mode updates BatchNorm's
    running statistics), the global torch RNG state and, with ``weights=True``, the
    parameter values."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.clone()) for b in model.buffers()]
    grads = [(p, p.grad, None if p.grad is None else p.grad.clone()) for p in model.parameters()]
    values = [(p, p.detach().clone()) for p in model.parameters()] if weights else []
    rng_state = torch.get_rng_state() if rng else None
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode
        for p, g, gv in grads:
            if g is not None:
                g.copy_(gv)
            p.grad = g
        with torch.no_grad():
            for p, v in values:
                p.copy_(v)
            for b, v in buffers:
                b.copy_(v)
        if rng_state is not None:
            torch.set_rng_state(rng_state)
