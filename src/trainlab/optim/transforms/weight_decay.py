"""Decoupled weight decay as a transform."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from trainlab.errors import check_range
from trainlab.optim.transforms._base import Params, Transform, Updates


def add_decayed_weights(weight_decay: float = 1e-2,
                        mask: Callable[[Params], Sequence[bool]] | None = None) -> Transform:
    r"""Add :math:`\lambda\,p` to each update, :math:`u \leftarrow u + \lambda p`.

    Placed after an adaptive scaling this is decoupled weight decay (Loshchilov & Hutter,
    "Decoupled Weight Decay Regularization", 2019): the adapter's ``lr`` then multiplies both.
    ``mask(params)`` (optional) says which parameters decay (e.g. not biases or norms)."""
    check_range("weight_decay", weight_decay, low=0.0, owner="add_decayed_weights")

    def update(updates: Updates, state: tuple, params: Params) -> tuple[Updates, tuple]:
        keep = mask(params) if mask is not None else [True] * len(params)
        out: Updates = []
        for u, p, k in zip(updates, params, keep):
            out.append(None if u is None else
                       (torch.add(u, p, alpha=weight_decay) if k and weight_decay else u))
        return out, state

    return Transform(lambda params: (), update)
