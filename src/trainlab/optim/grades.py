r"""GradES: per-component early stopping by gradient-change magnitude (papers.md row 95)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

import torch

from trainlab.errors import check_choice, check_range
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.transforms import (
    TRANSFORMS,
    Transform,
    TransformOptimizer,
    add_decayed_weights,
    chain,
    scale_by_adam,
)
from trainlab.optim.transforms._base import Params, Updates


class GradESState(NamedTuple):
    step: int
    frozen_at: list[int]  # -1 while a component trains
    previous: list[torch.Tensor]  # last gradient of each component
    inner: Any


def grades(inner: Transform, tau: float = 1e-4, alpha: float = 0.3, total_steps: int = 1000,
           metric: Literal["grad_change", "grad"] = "grad_change") -> Transform:
    r"""GradES (Wen et al., "GradES: Significantly Faster Training in Transformers with
    Gradient-Based Early Stopping", 2025; papers.md row 95) around any transform ``inner``.

    Each parameter tensor is a component (a projection matrix in the paper). At step
    :math:`t`, component :math:`W` is measured by the element-wise L1 norm of its gradient
    change :math:`m_t = \lVert \nabla W_t - \nabla W_{t-1}\rVert_1` (``metric="grad_change"``,
    the paper's final version; :math:`\nabla W_0 = 0`) or of its gradient
    :math:`\lVert\nabla W_t\rVert_1` (``"grad"``, the first preprint). Once
    :math:`t \ge \alpha T` (``T = total_steps``, grace period), a component with
    :math:`m_t < \tau` is frozen for good: from that step on its update is zero and ``inner``
    sees ``None`` for it (its moments stop). When every component is frozen, training can
    stop (the adapter's steps become no-ops).

    Defaults ``tau=1e-4``, ``alpha=0.3`` are the authors' package defaults (the paper tunes
    :math:`\tau` per model, e.g. 0.023 with ``alpha=0.55``). Deviations: components are
    parameter tensors (not a transformer's named projections); the authors' package measures
    the L1 change of the *weights* between steps, the paper the change of the gradients.

    State: ``step``, ``frozen_at`` (step each component froze at, -1 = training),
    ``previous`` (last gradients), ``inner``.
    """
    owner = "grades"
    check_range("tau", tau, low=0.0, owner=owner)
    check_range("alpha", alpha, low=0.0, high=1.0, owner=owner)
    check_range("total_steps", total_steps, low=1, owner=owner)
    check_choice("metric", metric, ("grad_change", "grad"), owner="grades")
    grace = alpha * total_steps

    def init(params: Params) -> GradESState:
        return GradESState(0, [-1] * len(params), [torch.zeros_like(p) for p in params],
                           inner.init(params))

    def update(updates: Updates, state: GradESState, params: Params
               ) -> tuple[Updates, GradESState]:
        t = state.step + 1
        frozen = list(state.frozen_at)
        previous = []
        for i, (g, prev) in enumerate(zip(updates, state.previous)):
            if g is None or frozen[i] >= 0:
                previous.append(prev)
                continue
            size = torch.linalg.vector_norm(g - prev if metric == "grad_change" else g, 1)
            if t >= grace and float(size) < tau:
                frozen[i] = t
            previous.append(prev.copy_(g))
        live = [None if f >= 0 else g for g, f in zip(updates, frozen)]
        out, inner_state = inner.update(live, state.inner, params)
        out = [None if g is None else (torch.zeros_like(g) if f >= 0 else u)
               for g, u, f in zip(updates, out, frozen)]
        return out, GradESState(t, frozen, previous, inner_state)

    return Transform(init, update)


def grades_adamw(params: Iterable[Any], lr: float = 1e-3, tau: float = 1e-4,
                 alpha: float = 0.3, total_steps: int = 1000,
                 metric: Literal["grad_change", "grad"] = "grad_change",
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, maximize: bool = False) -> TransformOptimizer:
    """AdamW with GradES freezing (the paper's fine-tuning setting): ``grades(chain(
    scale_by_adam, add_decayed_weights), tau, alpha, total_steps)``; frozen components get
    no update, not even weight decay. Pass the run's ``total_steps`` for the grace period.

    Deviations from the paper: those of :func:`grades` (components are parameter tensors;
    defaults ``tau`` and ``alpha`` from the authors' package), plus AdamW's defaults here
    (lr 1e-3, betas (0.9, 0.999), no weight decay), which are this library's, not the
    paper's fine-tuning settings (not checked for this paragraph).
    """
    tx = grades(chain(scale_by_adam(betas[0], betas[1], eps), add_decayed_weights(weight_decay)),
                tau, alpha, total_steps, metric)
    return TransformOptimizer(params, tx, lr=lr, maximize=maximize)


TRANSFORMS.register("grades", grades, papers=(95,),
                    summary="GradES: freeze a tensor once its gradient change |dg|_1 < tau")
OPTIMIZERS.register("grades-adamw", grades_adamw, papers=(95,),
                    summary="AdamW with GradES per-tensor early stopping (|dg|_1 < tau)")
