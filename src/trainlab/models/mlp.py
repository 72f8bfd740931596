"""Fully connected networks: the MLP and the deep linear network."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import check_choice, check_range
from trainlab.models._registry import MODELS
from trainlab.models.activations import activation


class NTKLinear(nn.Linear):
    r"""A linear layer in the NTK parametrization: :math:`y = W x / \sqrt{n_{in}} + b`.

    The weight is stored unscaled and initialized standard normal (the bias at zero), so the
    layer's output has the same scale as a standard layer with :math:`N(0, 1/n_{in})`
    weights, but gradient steps on :math:`W` are :math:`1/n_{in}` smaller: the
    parametrization in which the tangent kernel stays fixed as the width grows ("Neural
    Tangent Kernel", Jacot, Gabriel & Hongler, NeurIPS 2018; used by Cohen et al. 2021 and
    the edge-of-stability phenomenon, papers.md row 65). It is a :class:`torch.nn.Linear`,
    so layer selectors and init schemes see it; an init scheme meant for the standard
    parametrization then sets the *unscaled* weight.
    """

    def reset_parameters(self) -> None:
        # torch-default style (global RNG, overwritten by trainlab.init.apply): N(0, 1), 0.
        nn.init.normal_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight) / math.sqrt(self.in_features)
        return out + self.bias if self.bias is not None else out


def mlp(input_shape: tuple[int, ...], num_outputs: int, *, depth: int = 2, width: int = 128,
        activation_name: str = "relu", bias: bool = True,
        parametrization: Literal["standard", "ntk"] = "standard") -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units and the activation, then a linear readout.

    The input is flattened, so any input shape works. Layers are named ``0, 1, ...`` in the
    ``nn.Sequential`` (Linear layers at even positions after the Flatten).
    ``parametrization="ntk"`` uses :class:`NTKLinear` layers (weights scaled by
    ``1/sqrt(fan_in)`` in the forward pass, standard-normal init); ``"standard"`` uses
    :class:`torch.nn.Linear`.
    """
    check_range("depth", depth, low=0, owner="mlp")
    check_range("width", width, low=1, owner="mlp")
    check_choice("parametrization", parametrization, ("standard", "ntk"), owner="mlp")
    linear = NTKLinear if parametrization == "ntk" else nn.Linear
    fan_in = math.prod(input_shape)
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(depth):
        layers += [linear(fan_in, width, bias=bias), activation(activation_name)]
        fan_in = width
    layers.append(linear(fan_in, num_outputs, bias=bias))
    return nn.Sequential(*layers)


def deep_linear(input_shape: tuple[int, ...], num_outputs: int, *, depth: int = 2,
                width: int = 32) -> nn.Sequential:
    """A deep linear network (no biases, no nonlinearity): ``depth`` hidden layers
    (the setting of Saxe et al. 2014, papers.md row 1).

    Deviations from the paper: none in kind (bias-free linear layers, as in the paper); every hidden
    layer has the same ``width``, and the defaults (depth 2, width 32) are this library's, not the
    paper's network sizes.
    """
    return mlp(input_shape, num_outputs, depth=depth, width=width, activation_name="identity",
               bias=False)


MODELS.register("mlp", mlp, summary="multi-layer perceptron (depth, width, activation, bias, "
                                    "standard or NTK parametrization)")
MODELS.register("deep-linear", deep_linear, papers=(1,),
                summary="deep linear network without biases (Saxe et al. setting)")
