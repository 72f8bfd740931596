"""Does a model fit a task? Checked on two training examples before a run is created.

A model that cannot take the task's inputs (token ids into an MLP, vectors into a
transformer) or whose outputs the task's loss cannot take would otherwise fail at the first
training step, after the run was recorded. :func:`check_fits` runs one forward pass and the
loss on two examples (eval mode, no gradients, the caller's RNG and the model's mode given
back) and raises :class:`ConfigError` naming the registered models that do fit.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.probes import preserved

# what a model or a loss raises on inputs of the wrong shape or dtype
_MISMATCH = (RuntimeError, IndexError, ValueError, TypeError, AttributeError)


def _fits(model: nn.Module, task: Any) -> str | None:
    """None when ``model`` takes two training examples and the loss takes its outputs,
    else the first line of the error."""
    x, y = task.x_train[:2], task.y_train[:2]
    try:
        with preserved(model), torch.no_grad():
            model.eval()
            loss = task.loss(model(x), y)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                return f"the loss of the outputs is not a scalar (shape {tuple(loss.shape)})"
    except _MISMATCH as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return None


def compatible_models(task: Any, dtype: torch.dtype) -> list[str]:
    """The registered models that, built with their defaults, fit ``task``."""
    from trainlab.models import MODELS, build_model

    names = []
    with torch.random.fork_rng(devices=[]):
        for name in MODELS.names():
            try:
                model = build_model(name, task.input_shape, task.num_outputs).to(dtype)
            except Exception:  # noqa: BLE001 - a model that cannot even be built does not fit
                continue
            if _fits(model, task) is None:
                names.append(name)
    return names


def check_fits(model: nn.Module, model_name: str, task: Any, task_name: str) -> None:
    """Raise :class:`ConfigError` unless ``model`` fits ``task`` (see the module doc)."""
    reason = _fits(model, task)
    if reason is None:
        return
    dtype = next(model.parameters(), torch.empty(0)).dtype
    fit = compatible_models(task, dtype)
    raise ConfigError(f"model {model_name!r} does not fit task {task_name!r} ({reason}); "
                      f"models that fit it: {', '.join(fit) or 'none with their defaults'}")
