"""A small 1-D convolutional network for sequence inputs such as MNIST-1D."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.models._registry import MODELS
from trainlab.models.activations import activation


def _norm(norm: str, channels: int) -> nn.Module:
    return nn.GroupNorm(1, channels) if norm == "layernorm" else nn.Identity()


class _BasicBlock(nn.Module):
    """ResNet basic block for 1-D feature maps (see ``CNN1d``)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, norm: str, activation_name: str):
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv1d(in_ch, out_ch, 5, stride=stride, padding=2, bias=bias)
        self.norm1 = _norm(norm, out_ch)
        self.act1 = activation(activation_name)
        self.conv2 = nn.Conv1d(out_ch, out_ch, 5, stride=1, padding=2, bias=bias)
        self.norm2 = _norm(norm, out_ch)
        self.act2 = activation(activation_name)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_ch, out_ch, 1, stride=stride, bias=bias), _norm(norm, out_ch))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(h)))))
        return self.act2(out + self.shortcut(h))


class CNN1d(nn.Module):
    """``layers`` conv blocks (kernel 5, padding 2, stride 2 after the first) with
    ``channels`` channels, global average pooling, linear readout. Input ``(N, L)`` or
    ``(N, C, L)``.

    ``norm="layernorm"`` puts a layer normalization between each convolution and its
    activation: each example's feature map is normalized over channels and positions together,
    then scaled and shifted per channel (``nn.GroupNorm`` with one group, eps 1e-5), the
    normalization of the LayerNorm ResNets of the butterfly-effect paper (papers.md row 8).

    ``residual=True`` turns every layer after the first into a ResNet basic block as in the
    CIFAR ResNets of that paper: ``act(norm(conv2(act(norm(conv1(h))))) + shortcut(h))``, with
    ``conv1`` strided like the plain layer and ``conv2`` at stride 1 (both kernel 5, no bias
    when a normalization follows), and a shortcut that is the identity when the shape is kept,
    else a 1x1 strided convolution (no bias) followed by the same normalization. The first
    layer stays a plain ``conv -> norm -> act`` stem.
    """

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, *, channels: int = 32,
                 layers: int = 3, activation_name: str = "relu", norm: str = "none",
                 residual: bool = False):
        super().__init__()
        check_range("channels", channels, low=1, owner="cnn1d")
        check_range("layers", layers, low=1, owner="cnn1d")
        check_choice("norm", norm, ("none", "layernorm"), owner="cnn1d")
        in_ch = input_shape[0] if len(input_shape) == 2 else 1
        if not isinstance(residual, bool):
            raise ConfigError(f"cnn1d: residual must be True or False, got {residual!r}")
        blocks: list[nn.Module] = []
        for i in range(layers):
            stride = 1 if i == 0 else 2
            if residual and i > 0:
                blocks.append(_BasicBlock(in_ch, channels, stride, norm, activation_name))
            else:
                blocks.append(nn.Conv1d(in_ch, channels, 5, stride=stride, padding=2))
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
                                        "optional layer normalization and residual blocks")
