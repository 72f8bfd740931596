"""The three private torch facts :class:`~trainlab.probes.per_sample.LinearCapture` relies on,
each checked on the running torch before use, with a public fallback.

1. Which autograd nodes a ``nn.Linear`` on 2-D inputs produces (``AddmmBackward0`` with a
   bias, ``MmBackward0`` without) and in which ``grad_inputs`` slots the node hands back the
   layer's own weight gradient (transposed) and bias gradient. Node class names and slot
   orders are not public API, so :func:`product_node_slots` verifies them once against a real
   ``nn.Linear`` backward pass; a node whose layout differs is dropped, and the capture then
   computes the weight and bias gradients from the recorded input and output gradient
   instead (one product more per layer, same numbers).
2. Whether a functorch transform (``vmap``, ``grad``, ...) is active, where hooks must not
   record: ``torch._C._are_functorch_transforms_active``. Where it is missing,
   :func:`functorch_transforms_active` answers True, so nothing is captured and the probes
   take their second-pass path (slower, same numbers).
3. The version counter of a tensor (``Tensor._version``, bumped by every in-place operation
   on it or on a view of it), read by the capture: autograd hands the layer's own weight
   gradient on to ``p.grad`` without a copy (the gradient of :math:`W^T` is a view of the
   tensor that becomes ``p.grad``), so an in-place change of ``p.grad`` after the backward
   pass (``clip_grad_norm_``, a second backward pass accumulating) changes the recorded
   gradient too; the capture compares the counters at :meth:`take
   <trainlab.probes.per_sample.LinearCapture.take>` with those of the backward pass and
   drops a changed gradient (the statistics then take one product more, same numbers).
   The counter's behaviour is checked once at import (an in-place change through a view
   moves it); where the attribute is missing or does not behave so,
   :func:`versions_counted` answers False and the recorded gradients are never used.

Each fallback is announced once on the ``trainlab`` logger.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from trainlab.log import LOGGER, warn_once

#: the layouts trainlab knows: node class name -> (slot of W^T's gradient, slot of the bias's)
KNOWN_SLOTS: dict[str, tuple[int, int | None]] = {"AddmmBackward0": (2, 0),
                                                   "MmBackward0": (1, None)}


def _observed(bias: bool) -> tuple[str, tuple[torch.Tensor | None, ...], nn.Linear]:
    # no draw from the global RNG (the caller's dropout masks must not shift)
    g = torch.Generator().manual_seed(0)
    layer = torch.nn.utils.skip_init(nn.Linear, 3, 2, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64, generator=g))
    x = torch.randn(4, 3, dtype=torch.float64, generator=g)
    out = layer(x)
    seen: list[tuple[torch.Tensor | None, ...]] = []
    out.grad_fn.register_hook(lambda grad_inputs, grad_outputs: seen.append(grad_inputs))
    (out * torch.arange(8, dtype=torch.float64).view(4, 2)).sum().backward()
    return type(out.grad_fn).__name__, seen[0], layer


@functools.cache
def product_node_slots() -> dict[str, tuple[int, int | None]]:
    """The entries of :data:`KNOWN_SLOTS` that hold on this torch (checked once per process
    against a ``nn.Linear`` backward pass); an empty dict when none does."""
    verified: dict[str, tuple[int, int | None]] = {}
    for bias in (True, False):
        try:
            name, grads, layer = _observed(bias)
            slots = KNOWN_SLOTS.get(name)
            ok = slots is not None and torch.equal(grads[slots[0]].T, layer.weight.grad) and (
                slots[1] is None or torch.equal(grads[slots[1]], layer.bias.grad))
        except (IndexError, AttributeError, RuntimeError, TypeError):
            name, slots, ok = "?", None, False
        if ok and slots is not None:
            verified[name] = slots
        else:
            LOGGER.warning("torch %s: the autograd node of nn.Linear (bias=%s) is %r with a "
                         "layout trainlab does not know; per-example statistics compute the "
                         "layer's gradient from the captured activations instead",
                         torch.__version__, bias, name)
    return verified


_ACTIVE = getattr(torch._C, "_are_functorch_transforms_active", None)


def functorch_transforms_active(probe: object = _ACTIVE) -> bool:
    """Whether a functorch transform is active; True (capture nothing) where torch does not
    say (``probe`` is the private query, a parameter so tests can run the fallback)."""
    if probe is None:
        warn_once("no-functorch-query",
                  "torch %s has no _are_functorch_transforms_active: the probes do not reuse "
                  "the training step's backward pass (slower, same numbers)", torch.__version__)
        return True
    return bool(probe())


def transforms_query(probe: object = _ACTIVE) -> Callable[[], bool]:
    """What a hook calls at every forward pass to ask whether a functorch transform is
    active: the private query itself where torch has it (no Python call around it), else
    :func:`functorch_transforms_active` (True, warned once)."""
    if callable(probe):
        return probe  # type: ignore[return-value]
    return functools.partial(functorch_transforms_active, None)


def _counts_versions() -> bool:
    """Whether this torch has ``Tensor._version`` and an in-place change through a view moves
    the base's counter (what the capture relies on; checked once, at import)."""
    try:
        t = torch.zeros(2)
        before = t._version
        t[1:].add_(1)
        return isinstance(before, int) and t._version > before
    except (AttributeError, RuntimeError, TypeError):
        return False


_VERSIONED = _counts_versions()


def versions_counted(versioned: bool = _VERSIONED) -> bool:
    """Whether a capture may keep the layers' own gradients, checking their version counters
    (``Tensor._version``) at :meth:`take <trainlab.probes.per_sample.LinearCapture.take>`;
    False where torch does not expose them as :func:`_counts_versions` checks (``versioned``,
    a parameter so tests can run the fallback; warned once): the recorded gradients are then
    never used."""
    if not versioned:
        warn_once("no-version-counter",
                  "torch %s has no Tensor._version: the probes do not reuse the layers' own "
                  "gradients of the training step (one product more, same numbers)",
                  torch.__version__)
    return versioned
