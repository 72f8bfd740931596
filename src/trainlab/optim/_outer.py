"""Bases of the closure methods (contract: :mod:`trainlab.optim.closure`).

:class:`ClosureOptimizer` is the base of every method that calls the closure itself.
:class:`OuterOptimizer` adds a base optimizer: closure methods that compute a direction and
hand it to a base optimizer.

SAM, GAM, gradient regularization and Entropy-SGD change *which* gradient is used, not how
it is applied: the base optimizer (any registered name, SGD by default) applies the
direction. Outer and base share the same param-group dicts, so an LR scheduler attached to
the outer optimizer drives the base as well.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from trainlab.errors import ConfigError
from trainlab.optim._registry import build_optimizer
from trainlab.optim.loss_closure import evaluate, set_grads


def check_joint_hypers(optimizer: torch.optim.Optimizer, names: tuple[str, ...] | str) -> None:
    """Raise :class:`ConfigError` unless the hyperparameters ``names`` (``"all"``: every key of
    ``optimizer.defaults``) are equal in every param group.

    A method that computes one joint step over all groups (a global solve, a global
    perturbation norm, a line search) has one value of each such hyperparameter; a group with
    its own value would be silently ignored, so it is rejected instead.
    """
    groups = optimizer.param_groups
    if len(groups) < 2 or not names:
        return
    keys = tuple(optimizer.defaults) if names == "all" else names
    first = groups[0]
    for i, group in enumerate(groups[1:], 1):
        for key in keys:
            if key in first and group.get(key) != first[key]:
                raise ConfigError(
                    f"{type(optimizer).__name__} takes one joint step over all parameter "
                    f"groups, so {key!r} must be the same in every group (group 0: "
                    f"{first[key]!r}, group {i}: {group.get(key)!r}); use one group or equal "
                    "values")


class ClosureOptimizer(torch.optim.Optimizer):
    """Base of the optimizers that follow the closure contract and write back the pre-step
    gradient.

    ``joint_hypers`` names the hyperparameters of the one computation shared by all param
    groups (``"all"``: every hyperparameter, ``lr`` included, for methods whose step is one
    solve or line search over the concatenated parameters). They must be equal in every group:
    :func:`check_joint_hypers` runs when a group is added and at every step (a scheduler could
    set groups apart), so no group's value is ever silently ignored.
    """

    requires_closure = True
    joint_hypers: tuple[str, ...] | str = ()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        check_joint_hypers(self, self.joint_hypers)

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"] if p.requires_grad]

    def _require(self, closure: Callable[[], torch.Tensor] | None) -> Callable[[], torch.Tensor]:
        if closure is None:
            raise ConfigError(f"{type(self).__name__}.step needs a closure that re-evaluates "
                              "the loss and its gradients (see trainlab.optim.closure)")
        check_joint_hypers(self, self.joint_hypers)
        return closure

    def _first_call(self, closure: Callable[[], torch.Tensor] | None
                    ) -> tuple[Callable[[], torch.Tensor], list[torch.Tensor], torch.Tensor,
                               list[torch.Tensor]]:
        """The opening of every step: check the closure, call it at the current weights and
        return ``(closure, params, loss, grads)`` (grads: copies, zeros where none)."""
        closure = self._require(closure)
        params = self._params()
        loss, grads = evaluate(closure, params)
        return closure, params, loss, grads


class OuterOptimizer(ClosureOptimizer, ABC):
    """Wraps ``build_optimizer(base, params, lr, **base_hyper)``; subclasses implement
    :meth:`direction` and keep their own state in ``self.state``."""

    def __init__(self, params: Iterable[Any], lr: float, defaults: dict[str, Any], base: str,
                 base_hyper: dict[str, Any] | None):
        self.base = build_optimizer(base, params, lr, **(base_hyper or {}))
        super().__init__(self.base.param_groups, defaults)
        self.base_name = base

    @abstractmethod
    def direction(self, closure: Callable[[], torch.Tensor], params: list[torch.Tensor],
                  loss: torch.Tensor, grads: list[torch.Tensor]) -> Sequence[torch.Tensor]:
        """The vector the base optimizer should treat as the gradient."""

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        closure, params, loss, grads = self._first_call(closure)
        missing = [p.grad is None for p in params]  # no gradient: the base must not move it
        direction = self.direction(closure, params, loss, grads)
        set_grads(params, direction)
        for p, m in zip(params, missing):
            if m:
                p.grad = None
        self.base.step()
        set_grads(params, grads)
        for p, m in zip(params, missing):
            if m:
                p.grad = None
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"outer": super().state_dict(), "base": self.base.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict["outer"])
        self.base.load_state_dict(state_dict["base"])
        self.base.param_groups = self.param_groups  # share the group dicts again


def add_(params: Sequence[torch.Tensor], vectors: Sequence[torch.Tensor], alpha: float = 1.0
         ) -> None:
    """``p += alpha * v`` for each pair, in place, without autograd."""
    with torch.no_grad():
        for p, v in zip(params, vectors):
            p.add_(v, alpha=alpha)


def global_norm(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum((v * v).sum() for v in vectors))
