r"""Gradient descent in the metric induced by embedding the loss landscape.

The graph :math:`\theta \mapsto (\theta, \xi L(\theta))` of the loss, embedded in
:math:`\mathbb R^{n+1}`, carries the pulled-back metric
:math:`g = I + \xi^2 \nabla L \nabla L^\top`: the metric behind the usual loss-landscape
pictures. Its inverse follows from Sherman-Morrison, so the Riemannian gradient costs no solve:

.. math::  g^{-1} \nabla L = \frac{\nabla L}{1 + \xi^2 \|\nabla L\|^2},

and the update is :math:`\theta \leftarrow \theta - \eta\, g^{-1}\nabla L` (with optional
heavy-ball momentum on that direction and decoupled weight decay). The step shrinks where
the gradient is large, a smooth form of gradient clipping: its length never exceeds
:math:`\eta / (2\xi)`. The norm is taken over each param group.

References:
    Harvey. "The Optimiser Hidden in Plain Sight: Training with the Loss Landscape's Induced
    Metric", 2025 (arXiv 2509.03594; papers.md row 35).

Deviations from the paper:
    The embedding scale ``xi`` is exposed as a hyper-parameter (default 1, the plain graph
    embedding); the paper's Adam-preconditioned and scheduled variants are not implemented,
    and its exact scaling conventions could not be re-read for this implementation.

State keys: ``step``, ``momentum_buffer`` (with momentum).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from trainlab.errors import check_range
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim._stateful import StatefulOptimizer


def _single_tensor_induced_metric(params: list[torch.Tensor], grads: list[torch.Tensor],
                                  buffers: list[torch.Tensor | None], *, lr: float, xi: float,
                                  momentum: float, weight_decay: float) -> None:
    """One induced-metric step over a group (reference implementation)."""
    sq = sum(float((g * g).sum()) for g in grads)
    scale = 1.0 / (1.0 + xi * xi * sq)
    for p, g, buf in zip(params, grads, buffers):
        d = g * scale
        if buf is not None:
            d = buf.mul_(momentum).add_(d)
        if weight_decay:
            p.mul_(1 - lr * weight_decay)
        p.add_(d, alpha=-lr)


class InducedMetric(StatefulOptimizer):
    """Gradient descent with the landscape-induced metric ``I + xi^2 g g^T`` (module
    docstring).

    Args:
        params: parameters or param groups.
        lr: step size, >= 0.
        xi: embedding scale of the loss axis, > 0.
        momentum: heavy-ball factor on the Riemannian gradient, in [0, 1).
        weight_decay: decoupled weight decay, >= 0.
    """

    def __init__(self, params: Iterable[Any], lr: float = 0.1, xi: float = 1.0,
                 momentum: float = 0.0, weight_decay: float = 0.0):
        check_range("lr", lr, low=0.0, owner="InducedMetric")
        check_range("xi", xi, low=0.0, low_open=True, owner="InducedMetric")
        check_range("momentum", momentum, low=0.0, high=1.0, high_open=True,
                    owner="InducedMetric")
        check_range("weight_decay", weight_decay, low=0.0, owner="InducedMetric")
        super().__init__(params, dict(lr=lr, xi=xi, momentum=momentum,
                                      weight_decay=weight_decay))

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {"momentum_buffer": torch.zeros_like(p)} if group["momentum"] else {}

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor], states: list[dict[str, Any]]) -> None:
        _single_tensor_induced_metric(params, grads,
                                      [s.get("momentum_buffer") for s in states],
                                      lr=group["lr"], xi=group["xi"],
                                      momentum=group["momentum"],
                                      weight_decay=group["weight_decay"])


OPTIMIZERS.register("induced-metric", InducedMetric, papers=(35,),
                    summary="GD in the loss landscape's induced metric I + xi^2 g g^T "
                            "(Sherman-Morrison)")
