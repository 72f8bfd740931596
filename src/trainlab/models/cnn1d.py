"""A small 1-D convolutional network for sequence inputs such as MNIST-1D."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import check_choice, check_range
from trainlab.models._registry import MODELS
from trainlab.models.activations import activation


class CNN1d(nn.Module):
    """``layers`` conv blocks (kernel 5, padding 2, stride 2 after the first) with
    ``channels`` channels, global average pooling, linear readout. Input ``(N, L)`` or
    ``(N, C, L)``.

    ``norm="layernorm"`` puts a layer normalization between each convolution and its
    activation: each example's feature map is normalized over channels and positions together,
    then scaled and shifted per channel (``nn.GroupNorm`` with one group, eps 1e-5), the
    normalization of the LayerNorm ResNets of the butterfly-effect paper (papers.md row 8).
    """

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, *, channels: int = 32,
                 layers: int = 3, activation_name: str = "relu", norm: str = "none"):
        super().__init__()
        check_range("channels", channels, low=1, owner="cnn1d")
        check_range("layers", layers, low=1, owner="cnn1d")
        check_choice("norm", norm, ("none", "layernorm"), owner="cnn1d")
        in_ch = input_shape[0] if len(input_shape) == 2 else 1
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks.append(nn.Conv1d(in_ch, channels, 5, stride=1 if i == 0 else 2, padding=2))
            if norm == "layernorm":
                blocks.append(nn.GroupNorm(1, channels))
            blocks.append(activation(activation_name))
            in_ch = channels
        self.features = nn.Sequential(*blocks)
        self.readout = nn.Linear(channels, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return self.readout(self.features(x).mean(dim=-1))


MODELS.register("cnn1d", CNN1d, summary="1-D CNN with global average pooling (for MNIST-1D), "
                                        "optional layer normalization")
