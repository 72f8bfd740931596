"""Fully connected networks: the MLP and the deep linear network."""

from __future__ import annotations

import math

from torch import nn

from trainlab.errors import check_range
from trainlab.models._registry import MODELS
from trainlab.models.activations import activation


def mlp(input_shape: tuple[int, ...], num_outputs: int, *, depth: int = 2, width: int = 128,
        activation_name: str = "relu", bias: bool = True) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units and the activation, then a linear readout.

    The input is flattened, so any input shape works. Layers are named ``0, 1, ...`` in the
    ``nn.Sequential`` (Linear layers at even positions after the Flatten).
    """
    check_range("depth", depth, low=0, owner="mlp")
    check_range("width", width, low=1, owner="mlp")
    fan_in = math.prod(input_shape)
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width, bias=bias), activation(activation_name)]
        fan_in = width
    layers.append(nn.Linear(fan_in, num_outputs, bias=bias))
    return nn.Sequential(*layers)


def deep_linear(input_shape: tuple[int, ...], num_outputs: int, *, depth: int = 2,
                width: int = 32) -> nn.Sequential:
    """A deep linear network (no biases, no nonlinearity): ``depth`` hidden layers
    (the setting of Saxe et al. 2014, papers.md row 1)."""
    return mlp(input_shape, num_outputs, depth=depth, width=width, activation_name="identity",
               bias=False)


MODELS.register("mlp", mlp, summary="multi-layer perceptron (depth, width, activation, bias)")
MODELS.register("deep-linear", deep_linear, papers=(1,),
                summary="deep linear network without biases (Saxe et al. setting)")
