"""The one adapter from any gradient :class:`~trainlab.optim.transforms.Transform` to a
``torch.optim.Optimizer``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from trainlab.errors import check_range
from trainlab.optim.closure import call_closure
from trainlab.optim.transforms._base import Transform, tree_leaves, tree_replace_leaves


class TransformOptimizer(torch.optim.Optimizer):
    r"""Run a gradient transform (usually a :func:`chain`) as a torch optimizer.

    Each step, for every param group: ``u = transform.update(grads, state, params)`` and
    :math:`p \leftarrow p - \mathrm{lr}\, u`, with ``lr`` read from the group, so torch
    schedulers, ``add_param_group`` and per-group learning rates work. Each group keeps its own
    transform state, created on the group's first step. ``p.grad`` is read and never written;
    ``maximize=True`` negates into new tensors. A transform with an ``apply_`` hook (a fused
    update-and-step, e.g. :func:`~trainlab.optim.grokfast_adamw`'s) runs that instead when the
    hook accepts the inputs; this is the one place that dispatches to it.

    ``state_dict()`` holds torch's usual entries plus ``"transform_state"``: per group, the
    flattened leaves of the transform state (tensors, numbers). Loading rebuilds the structure
    with ``transform.init`` and copies the leaves in, so a resumed run continues exactly.

    Args:
        params: parameters or param-group dicts.
        transform: the gradient transformation (hyper-parameters are fixed when it is built).
        lr: step size multiplying the transformed updates, ``>= 0``.
        maximize: ascend instead of descend.
    """

    def __init__(self, params: Iterable[Any], transform: Transform, lr: float = 1e-3, *,
                 maximize: bool = False):
        check_range("lr", lr, low=0.0, owner="TransformOptimizer")
        if not isinstance(transform, Transform):
            raise TypeError(f"transform must be a trainlab Transform, got {type(transform)}")
        self.transform = transform
        self._transform_states: list[Any] = []
        super().__init__(params, {"lr": lr, "maximize": maximize})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = call_closure(closure)
        states = self._transform_states
        states.extend([None] * (len(self.param_groups) - len(states)))
        for i, group in enumerate(self.param_groups):
            params = group["params"]
            grads = [None if p.grad is None else (-p.grad if group["maximize"] else p.grad)
                     for p in params]
            if all(g is None for g in grads):
                continue
            if states[i] is None:
                states[i] = self.transform.init(params)
            fused = self.transform.apply_
            new = None if fused is None else fused(grads, states[i], params, group["lr"])
            if new is not None:  # the transform's fused fast path did update and step
                states[i] = new
                continue
            updates, states[i] = self.transform.update(grads, states[i], params)
            for p, u in zip(params, updates):
                if u is not None:
                    p.add_(u, alpha=-group["lr"])
        return loss

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["transform_state"] = [None if s is None else tree_leaves(s)
                                 for s in self._transform_states]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        saved = sd.pop("transform_state", [])
        super().load_state_dict(sd)
        self._transform_states = [
            None if leaves is None
            else tree_replace_leaves(self.transform.init(group["params"]), leaves)
            for group, leaves in zip(self.param_groups, saved)
        ]
