"""Activation functions by name (one registry, used by every model builder)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from trainlab.registry import Registry

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation")


class Sine(nn.Module):
    """sin(w0 * x), the SIREN activation (w0 = 30 in the SIREN paper)."""

    def __init__(self, w0: float = 1.0):
        super().__init__()
        self.w0 = w0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w0 * x)


for _name, _cls, _summary in [
    ("relu", nn.ReLU, "max(0, x)"),
    ("tanh", nn.Tanh, "hyperbolic tangent"),
    ("sigmoid", nn.Sigmoid, "logistic sigmoid"),
    ("gelu", nn.GELU, "Gaussian error linear unit"),
    ("silu", nn.SiLU, "x * sigmoid(x)"),
    ("elu", nn.ELU, "exponential linear unit"),
    ("selu", nn.SELU, "scaled ELU"),
    ("leaky-relu", nn.LeakyReLU, "leaky ReLU, slope 0.01"),
    ("softplus", nn.Softplus, "log(1 + exp(x))"),
    ("identity", nn.Identity, "no nonlinearity (linear network)"),
    ("sine", Sine, "sin(x)"),
]:
    ACTIVATIONS.register(_name, _cls, summary=_summary)


def activation(name: str) -> nn.Module:
    return ACTIVATIONS.get(name)()
