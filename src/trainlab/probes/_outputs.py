"""How probes reach a model's outputs and loss, whatever the model returns.

A probe never assumes that ``model(x)`` is a tensor. It calls the model as the curvature
operators do (:func:`call`: a tuple of inputs is unpacked into positional arguments), hands
the raw output to the user's loss function, and, where it needs the output itself (logits
for the softmax normalizer, a Jacobian of the outputs), reads it through :func:`logits`:
a tensor as is; a mapping's ``"logits"`` entry (a dict, a Hugging Face ``ModelOutput``);
an object's ``.logits`` attribute; the first tensor of a tuple or list (the
``return_dict=False`` convention). A model that computes its own loss is monitored with
``loss_fn=None`` and batches ``((arg, ...), targets)``; :func:`loss_function` then reads the
loss from the output (a scalar tensor, or its ``loss`` entry or attribute).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError

LossFn = Callable[[Any, Any], torch.Tensor]


def call(model: nn.Module, inputs: Any) -> Any:
    """``model(*inputs)`` for a tuple of inputs, else ``model(inputs)``."""
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def logits(output: Any) -> torch.Tensor:
    """The output tensor of a model's output (see the module docstring for the rules).

    >>> logits({"logits": torch.zeros(2, 3), "hidden": None}).shape
    torch.Size([2, 3])

    Raises:
        ConfigError: nothing in the output is a tensor of logits.
    """
    if isinstance(output, torch.Tensor):
        return output
    found = None
    if isinstance(output, Mapping):
        found = output.get("logits")
    if found is None:
        found = getattr(output, "logits", None)
    if found is None and isinstance(output, (tuple, list)):
        found = next((o for o in output if isinstance(o, torch.Tensor)), None)
    if not isinstance(found, torch.Tensor):
        raise ConfigError(f"The model's output ({type(output).__name__}) has no logits: a "
                          "probe reads a tensor, a 'logits' entry or attribute, or the first "
                          "tensor of a tuple.")
    return found


def own_loss(output: Any, targets: Any = None) -> torch.Tensor:
    """The loss a model computed itself: its scalar output, or the ``loss`` entry or
    attribute of its output (``targets`` are ignored)."""
    del targets
    if isinstance(output, torch.Tensor) and output.dim() == 0:
        return output
    loss = output.get("loss") if isinstance(output, Mapping) else getattr(output, "loss", None)
    if not isinstance(loss, torch.Tensor):
        raise ConfigError(f"loss_fn=None means the model computes its own loss, but its output "
                          f"({type(output).__name__}) is neither a scalar tensor nor has a "
                          "'loss' entry.")
    return loss


def loss_function(loss_fn: LossFn | None) -> LossFn:
    """The loss function probes call: the user's own, or :func:`own_loss` for ``None``."""
    return own_loss if loss_fn is None else loss_fn


def batch_size(inputs: Any) -> int:
    """Examples in a batch of inputs (the leading dimension of the first tensor)."""
    first = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
    if not isinstance(first, torch.Tensor) or first.dim() == 0:
        raise ConfigError(f"Probes need batched tensor inputs (leading dimension = examples); "
                          f"got {type(first).__name__}.")
    return first.shape[0]


def take(inputs: Any, n: int) -> Any:
    """The first ``n`` examples of a batch of inputs or targets (tuples entry-wise; None
    stays None)."""
    if inputs is None:
        return None
    if isinstance(inputs, tuple):
        return tuple(take(x, n) for x in inputs)
    return inputs[:n]
