"""Implicit neural representations: coordinate MLPs with periodic or localized activations
(SIREN; the activations studied by VI3NR, papers.md row 58)."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.errors import ConfigError, check_range
from trainlab.models._registry import MODELS
from trainlab.models.activations import Sine


class GaussianBump(nn.Module):
    """exp(-x^2 / (2 s^2)) (the Gaussian INR activation; s = 0.05 in VI3NR's toy)."""

    def __init__(self, s: float = 0.05):
        super().__init__()
        self.s = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-x * x / (2 * self.s ** 2))


class Sinc(nn.Module):
    """sin(x) / x (1 at 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sinc(x / math.pi)


class Wavelet(nn.Module):
    """cos(x) exp(-x^2) (a Gabor-like wavelet activation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cos(x) * torch.exp(-x * x)


INR_ACTIVATIONS = {"sine": lambda: Sine(30.0), "gaussian": GaussianBump, "sinc": Sinc,
                   "wavelet": Wavelet}


def inr_activation(name: str) -> nn.Module:
    if name in INR_ACTIVATIONS:
        return INR_ACTIVATIONS[name]()
    from trainlab.models.activations import activation

    return activation(name)


def inr_mlp(input_shape: tuple[int, ...], num_outputs: int, *, depth: int = 3, width: int = 256,
            activation_name: str = "sine") -> nn.Sequential:
    """A coordinate MLP: ``depth`` hidden layers with an INR activation (``sine`` is SIREN's
    sin(30 x); also ``gaussian``, ``sinc``, ``wavelet`` or any registered activation), then a
    linear output.

    Deviations from the paper: a plain coordinate MLP whose defaults (depth 3, width 256, SIREN's
    sine) are this library's; the activation parameters of the non-sine activations are those of
    :func:`trainlab.models.inr.inr_activation`, which were not checked against the paper's
    experimental settings for this paragraph.
    """
    check_range("depth", depth, low=1, owner="inr-mlp")
    check_range("width", width, low=1, owner="inr-mlp")
    if len(input_shape) != 1:
        raise ConfigError(f"inr-mlp takes coordinate vectors, got input shape {input_shape}")
    layers: list[nn.Module] = []
    fan_in = input_shape[0]
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), inr_activation(activation_name)]
        fan_in = width
    layers.append(nn.Linear(fan_in, num_outputs))
    return nn.Sequential(*layers)


MODELS.register("inr-mlp", inr_mlp, papers=(58,),
                summary="coordinate MLP with sine (SIREN), Gaussian, sinc or wavelet activations")
