"""LoRA adapters on any ``nn.Linear`` (Hu et al. 2022; init study: Hayou, Ghosh & Yu,
NeurIPS 2024, papers.md row 32)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from trainlab.errors import check_range


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * B A x`` with a frozen ``base`` Linear, ``A: (r, in)`` and
    ``B: (out, r)``. ``A`` and ``B`` start at zero; initialize them with
    ``trainlab.init.apply(model, "lora-a" | "lora-b")`` (Init[A] or Init[B])."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float | None = None,
                 freeze_base: bool = True):
        super().__init__()
        check_range("rank", rank, low=1, owner="LoRALinear")
        self.base = base
        self.rank = rank
        self.scaling = (rank if alpha is None else alpha) / rank
        self.lora_a = nn.Parameter(torch.zeros(rank, base.in_features, dtype=base.weight.dtype))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, dtype=base.weight.dtype))
        if freeze_base:
            for p in base.parameters():
                p.requires_grad_(False)

    def delta(self) -> torch.Tensor:
        """The adapter's weight update ``(alpha / r) B A`` (shape of ``base.weight``)."""
        return self.scaling * self.lora_b @ self.lora_a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scaling * (x @ self.lora_a.T) @ self.lora_b.T


def add_lora(model: nn.Module, rank: int = 8, alpha: float | None = None,
             select: Callable[[str, nn.Linear], bool] | None = None,
             freeze_base: bool = True) -> list[str]:
    """Replace (in place) every ``nn.Linear`` chosen by ``select(name, module)`` (default: all)
    with a :class:`LoRALinear` wrapping it; returns the names replaced."""
    targets = [(n, m) for n, m in model.named_modules()
               if isinstance(m, nn.Linear) and (select is None or select(n, m))]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, rank, alpha, freeze_base))
    return [n for n, _ in targets]
