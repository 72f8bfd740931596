"""Residual networks without normalization, with Fixup's scalar biases and multipliers
(Zhang, Dauphin & Ma, ICLR 2019), for the Fixup and IDInit schemes."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.errors import check_choice, check_range
from trainlab.models._registry import MODELS


class ResidualBlock(nn.Module):
    """``relu(x + scale * L2(relu(L1(x + b1a) + b1b) + b2a) + b2b)`` with ``L1, L2`` both
    Linear (``kind="mlp"``) or Conv1d with kernel 3 (``kind="conv1d"``). ``branch_in`` and
    ``branch_out`` name the branch's first and last layers for the init schemes; the scalar
    biases start at 0 and the scale at 1."""

    def __init__(self, width: int, kind: str = "mlp"):
        super().__init__()
        check_choice("kind", kind, ("mlp", "conv1d"), owner="ResidualBlock")
        if kind == "mlp":
            self.branch_in = nn.Linear(width, width, bias=False)
            self.branch_out = nn.Linear(width, width, bias=False)
        else:
            self.branch_in = nn.Conv1d(width, width, 3, padding=1, bias=False)
            self.branch_out = nn.Conv1d(width, width, 3, padding=1, bias=False)
        self.bias1a, self.bias1b, self.bias2a, self.bias2b = (
            nn.Parameter(torch.zeros(())) for _ in range(4))
        self.scale = nn.Parameter(torch.ones(()))

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.branch_in(x + self.bias1a) + self.bias1b)
        return self.branch_out(h + self.bias2a) * self.scale + self.bias2b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.branch(x))


class ResNet(nn.Module):
    """Stem (Linear or Conv1d), ``blocks`` residual blocks, (global average pooling for conv),
    a scalar bias and a linear readout ``fc``."""

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, *, blocks: int = 4,
                 width: int = 64, kind: str = "mlp"):
        super().__init__()
        check_range("blocks", blocks, low=1, owner="resnet")
        check_range("width", width, low=1, owner="resnet")
        self.kind = kind
        if kind == "mlp":
            self.stem = nn.Linear(math.prod(input_shape), width)
        else:
            in_ch = input_shape[0] if len(input_shape) == 2 else 1
            self.stem = nn.Conv1d(in_ch, width, 3, padding=1)
        self.blocks = nn.ModuleList(ResidualBlock(width, kind) for _ in range(blocks))
        self.bias_out = nn.Parameter(torch.zeros(()))
        self.fc = nn.Linear(width, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            x = x.flatten(1)
        elif x.dim() == 2:
            x = x.unsqueeze(1)
        h = torch.relu(self.stem(x))
        for block in self.blocks:
            h = block(h)
        if self.kind != "mlp":
            h = h.mean(dim=-1)
        return self.fc(h + self.bias_out)


MODELS.register("resnet", ResNet,
                summary="normalization-free residual net (mlp or conv1d blocks), Fixup-ready")
