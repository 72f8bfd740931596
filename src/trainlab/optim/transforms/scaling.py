"""Adaptive scalings of the update, as transforms: Adam's moment ratio."""

from __future__ import annotations

from typing import NamedTuple

import torch

from trainlab.errors import check_range
from trainlab.optim.transforms._base import Params, Transform, Updates


class ScaleByAdamState(NamedTuple):
    count: int
    mu: list[torch.Tensor]
    nu: list[torch.Tensor]


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Transform:
    r"""Adam's direction :math:`\hat m_t / (\sqrt{\hat v_t} + \epsilon)` with bias-corrected
    moments (Kingma & Ba, "Adam: A Method for Stochastic Optimization", 2015).

    ``chain(scale_by_adam(), add_decayed_weights(wd))`` under :class:`TransformOptimizer` is
    AdamW (torch's ``AdamW`` to rounding)."""
    check_range("b1", b1, low=0.0, high=1.0, high_open=True, owner="scale_by_adam")
    check_range("b2", b2, low=0.0, high=1.0, high_open=True, owner="scale_by_adam")
    check_range("eps", eps, low=0.0, owner="scale_by_adam")

    def init(params: Params) -> ScaleByAdamState:
        return ScaleByAdamState(0, [torch.zeros_like(p) for p in params],
                                [torch.zeros_like(p) for p in params])

    def update(updates: Updates, state: ScaleByAdamState, params: Params
               ) -> tuple[Updates, ScaleByAdamState]:
        t = state.count + 1
        bc1, bc2_sqrt = 1.0 - b1**t, (1.0 - b2**t) ** 0.5
        out: Updates = []
        for g, m, v in zip(updates, state.mu, state.nu):
            if g is None:
                out.append(None)
                continue
            m.lerp_(g, 1.0 - b1)  # donated state buffers, updated in place
            v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            den = v.sqrt().add_(eps * bc2_sqrt)  # (m/bc1) / (sqrt(v/bc2) + eps), rearranged
            out.append(torch.mul(m, bc2_sqrt / bc1).div_(den))
        mus, nus = state.mu, state.nu
        return out, ScaleByAdamState(t, mus, nus)

    return Transform(init, update)
