"""Gradient clipping transforms (Pascanu et al., 2013; papers.md row 31)."""

from __future__ import annotations

import torch

from trainlab.errors import check_range
from trainlab.optim.transforms._base import Params, Transform, Updates


def global_norm(updates: Updates) -> torch.Tensor:
    """The Euclidean norm of all non-``None`` updates taken together."""
    norms = [torch.linalg.vector_norm(u) for u in updates if u is not None]
    if not norms:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(norms))


def clip_by_global_norm(max_norm: float = 1.0) -> Transform:
    r"""Rescale all updates together when their global norm exceeds ``max_norm``:
    :math:`g \leftarrow g \cdot \min(1, c/\lVert g\rVert)`.

    "On the difficulty of training Recurrent Neural Networks" (Pascanu, Mikolov & Bengio, ICML
    2013; papers.md row 31), Algorithm 1 ("gradient norm clipping"): if
    :math:`\lVert \hat g\rVert \ge` threshold, :math:`\hat g \leftarrow (\text{threshold} /
    \lVert \hat g\rVert)\,\hat g`. The paper suggests a threshold of 0.5 to 10 times the average
    norm seen over a number of updates; ``max_norm`` has no universal default (1.0 is common).
    Unlike ``torch.nn.utils.clip_grad_norm_`` this returns new tensors and leaves ``p.grad``
    untouched (no ``+1e-6`` in the denominator: the norm is only divided when it exceeds c).

    Deviations from the paper: the default ``max_norm = 1`` is a common value, not the paper's (see
    above); the norm is over all the updates the transform sees (a param group).
    """
    check_range("max_norm", max_norm, low=0.0, low_open=True, owner="clip_by_global_norm")

    def update(updates: Updates, state: tuple, params: Params) -> tuple[Updates, tuple]:
        norm = global_norm(updates)
        scale = torch.clamp(max_norm / norm, max=1.0) if norm > 0 else 1.0
        return [None if u is None else u * scale for u in updates], state

    return Transform(lambda params: (), update)


def clip_by_value(max_abs: float = 1.0) -> Transform:
    """Clip each coordinate to ``[-max_abs, max_abs]`` (the element-wise alternative the
    same paper contrasts with norm clipping).

    Deviations from the paper: the default ``max_abs = 1`` is this library's; the paper describes
    element-wise clipping only as the alternative it contrasts with.
    """
    check_range("max_abs", max_abs, low=0.0, low_open=True, owner="clip_by_value")

    def update(updates: Updates, state: tuple, params: Params) -> tuple[Updates, tuple]:
        return [None if u is None else u.clamp(-max_abs, max_abs) for u in updates], state

    return Transform(lambda params: (), update)
