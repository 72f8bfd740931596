"""The shell shared by trainlab's element-wise optimizers: closure evaluation, lazy
per-parameter state with a step counter, and dispatch of each param group to one update."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch

from trainlab.errors import ConfigError
from trainlab.optim._lazy_dynamo import optimizer_method
from trainlab.optim.closure import call_closure


class StatefulOptimizer(torch.optim.Optimizer, ABC):
    """Base of trainlab's ``torch.optim.Optimizer`` subclasses.

    Subclasses define ``_init_state(p, group) -> dict`` (the state keys, fixed documented
    strings) and ``_update_group(group, params, grads, states)``, which calls the module's
    ``_single_tensor_<name>`` reference. ``step`` evaluates the closure (under
    ``torch.enable_grad``) first, skips parameters whose ``grad`` is ``None``, creates state
    lazily and increments ``state["step"]`` (a Python int) before the update. ``p.grad`` is
    passed on read-only.

    Class attributes read by generic loops and by the registry
    (:class:`~trainlab.optim.OptimizerInfo`): ``requires_closure`` (the step needs a closure,
    see :mod:`trainlab.optim.closure`; an instance may override it), and, where true,
    ``joint_step``, ``stochastic``, ``needs_ggn``.
    """

    requires_closure: bool = False
    _closure_loss: Any = None  # what the closure of the current step returned

    # torch's own methods, without importing torch._dynamo for them (see _lazy_dynamo)
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        optimizer_method("add_param_group")(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        optimizer_method("zero_grad")(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return optimizer_method("state_dict")(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        optimizer_method("load_state_dict")(self, state_dict)

    @abstractmethod
    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """The new state of parameter ``p`` (fixed, documented keys)."""

    @abstractmethod
    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor], states: list[dict[str, Any]]) -> None:
        """Apply the update to one param group (calls the ``_single_tensor_`` reference)."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = call_closure(closure)
        if closure is None and self.requires_closure:
            raise ConfigError(f"{type(self).__name__}.step needs a closure that recomputes the "
                              f"loss and gradients (see trainlab.optim.closure)")
        self._closure_loss = loss
        for group in self.param_groups:
            params, grads, states = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state.update(self._init_state(p, group))
                    state["step"] = 0
                state["step"] += 1
                params.append(p)
                grads.append(p.grad)
                states.append(state)
            if params:
                self._update_group(group, params, grads, states)
        return loss
