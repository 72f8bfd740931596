"""The probe protocol: a named measurement with a cadence, and the context it reads.

A probe returns numbers and stores nothing. Everything a probe may need about the current
step is in :class:`ProbeContext`; quantities that several probes need in the same step (a
Hessian-vector-product closure, the flat gradient) are computed once through
``ctx.cached(key, fn)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trainlab.registry import Registry

Measurement = dict[str, "torch.Tensor | float"]


@dataclass
class ProbeContext:
    """What a probe sees at step ``step`` (after the optimizer step of that step).

    Attributes:
        step: the step index just completed (0-based).
        model: the model (probes must leave it exactly as found: mode, weights, grads).
        loss_fn: ``loss_fn(outputs, targets) -> scalar``.
        batch: ``(inputs, targets)`` of this step.
        loss: the batch loss at the pre-step parameters (a detached tensor).
        optimizer: the optimizer (its state may be read, never written).
        lr: the learning rate used for this step (first param group).
        init_params: parameters at step 0 (detached copies), by name.
        prev_params: parameters before this step's update, when some due probe asked for
            them (``Probe.needs_prev_params``), else None.
        task: the :class:`~trainlab.tasks.Task`, when there is one (for evaluation).
        generator: randomness for stochastic probes (seeded from the run's seed).
        cache: per-step cache shared by the probes measured in this step.
    """

    step: int
    model: nn.Module
    loss_fn: Callable[[torch.Tensor, Any], torch.Tensor]
    batch: tuple[Any, Any]
    loss: torch.Tensor | None = None
    optimizer: torch.optim.Optimizer | None = None
    lr: float | None = None
    init_params: dict[str, torch.Tensor] = field(default_factory=dict)
    prev_params: dict[str, torch.Tensor] | None = None
    task: Any = None
    generator: torch.Generator | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` computed once per step and shared between probes."""
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]

    def params(self) -> dict[str, torch.Tensor]:
        """Current trainable parameters by name (detached views, not copies)."""
        return {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad}

    def grads(self) -> dict[str, torch.Tensor]:
        """Current gradients by name (parameters without a gradient are skipped)."""
        return {n: p.grad.detach() for n, p in self.model.named_parameters()
                if p.requires_grad and p.grad is not None}


class Probe(ABC):
    """Base class: subclasses set ``name`` and implement :meth:`measure`.

    Args:
        every: measure at steps where ``step % every == 0`` (and at the last step).

    Subclasses may set ``needs_prev_params = True`` (the trainer then snapshots the
    parameters before the update at due steps) and keep state across steps through
    :meth:`state_dict` / :meth:`load_state_dict`, which checkpoints save.
    """

    name: str = ""
    needs_prev_params: bool = False

    def __init__(self, every: int = 1):
        from trainlab.errors import check_range

        check_range("every", every, low=1, owner=f"probe {self.name!r}")
        self.every = int(every)

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def setup(self, ctx: ProbeContext) -> None:  # noqa: B027  (optional hook)
        """Called once, at the first step measured, before :meth:`measure`."""

    @abstractmethod
    def measure(self, ctx: ProbeContext) -> Measurement:
        """Return named scalars (tensors or floats) for this step."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(every={self.every})"


PROBES: Registry[type[Probe]] = Registry("probe")
