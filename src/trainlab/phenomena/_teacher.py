"""A synthetic 10-class classification task labelled by a random teacher network, shared by
the phenomena that need one."""

from __future__ import annotations

import torch

from trainlab.init import apply as init_apply
from trainlab.models import build_model


def teacher_labels(n: int, generator: torch.Generator, *, dim: int = 20
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` standard-normal inputs of size ``dim`` and their labels: the argmax of a
    Kaiming-initialized ReLU MLP (2 hidden layers of 64) drawn from ``generator`` first."""
    teacher = build_model("mlp", (dim,), 10, depth=2, width=64)
    init_apply(teacher, "kaiming-normal", generator=generator)
    x = torch.randn(n, dim, generator=generator)
    with torch.no_grad():
        y = teacher(x).argmax(1)
    return x, y
