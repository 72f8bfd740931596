"""Maxout units and a maxout MLP (Tseran & Montufar, 2023, papers.md row 17)."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.errors import check_range
from trainlab.models._registry import MODELS


class Maxout(nn.Module):
    """``out_features`` maxout units of rank ``rank``: each is the maximum of ``rank`` affine
    functions of the input. The pieces live in one ``nn.Linear(in, out * rank)``; unit ``i``
    takes the max over rows ``i * rank ... i * rank + rank - 1``."""

    def __init__(self, in_features: int, out_features: int, rank: int = 5, bias: bool = True):
        super().__init__()
        check_range("rank", rank, low=1, owner="Maxout")
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.linear = nn.Linear(in_features, out_features * rank, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x)
        return z.view(*z.shape[:-1], self.out_features, self.rank).amax(dim=-1)


def maxout_mlp(input_shape: tuple[int, ...], num_outputs: int, *, depth: int = 2,
               width: int = 64, rank: int = 5, bias: bool = True) -> nn.Sequential:
    """``depth`` maxout layers of ``width`` units of rank ``rank``, then a linear readout
    (the paper's experiments use rank 5).

    Deviations from the paper: ``rank = 5`` follows the paper's experiments (as stated above); the
    depth (2) and width (64) defaults are this library's, not the paper's network sizes (not re-read
    for this paragraph).
    """
    check_range("depth", depth, low=0, owner="maxout-mlp")
    check_range("width", width, low=1, owner="maxout-mlp")
    fan_in = math.prod(input_shape)
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(depth):
        layers.append(Maxout(fan_in, width, rank, bias))
        fan_in = width
    layers.append(nn.Linear(fan_in, num_outputs, bias=bias))
    return nn.Sequential(*layers)


MODELS.register("maxout-mlp", maxout_mlp, papers=(17,),
                summary="MLP of maxout units (depth, width, rank)")
