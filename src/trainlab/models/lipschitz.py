"""1-Lipschitz layers: AOL (Prach & Lampert 2022) and SLL (Araujo et al. 2023), the layers
whose initialization is analysed in papers.md row 64."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.errors import check_range
from trainlab.models._registry import MODELS


def aol_rescale(weight: torch.Tensor) -> torch.Tensor:
    r"""AOL's rescaled weight :math:`W D`, :math:`D = \mathrm{diag}(\sum_j |W^T W|_{ij})^{-1/2}`:
    a matrix of spectral norm at most 1 for any ``weight`` ``(out, in)``, invariant to
    ``weight -> c * weight``."""
    gram = (weight.T @ weight).abs().sum(dim=1)
    return weight * gram.clamp_min(torch.finfo(weight.dtype).tiny).rsqrt()[None, :]


class AOLLinear(nn.Linear):
    """A Linear layer whose effective weight is :func:`aol_rescale` (``self.weight``) - a
    1-Lipschitz affine map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, aol_rescale(self.weight), self.bias)


class SLLBlock(nn.Module):
    r"""SDP-based Lipschitz layer: :math:`x - 2 W^T T^{-1} \mathrm{relu}(W x + b)` with
    :math:`T = \mathrm{diag}(\sum_j |(W W^T)_{ij}|\, q_j / q_i)`, :math:`q = \exp(q_{param})`
    (``W``: ``(hidden, features)``); 1-Lipschitz for any ``W``."""

    def __init__(self, features: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or features
        self.weight = nn.Parameter(torch.empty(hidden, features))
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.q = nn.Parameter(torch.zeros(hidden))
        nn.init.xavier_normal_(self.weight)

    def t_inverse(self) -> torch.Tensor:
        q = self.q.exp()
        gram = (self.weight @ self.weight.T).abs()
        return 1.0 / (gram * q[None, :] / q[:, None]).sum(dim=1).clamp_min(1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(x @ self.weight.T + self.bias) * self.t_inverse()
        return x - 2.0 * h @ self.weight


def aol_mlp(input_shape: tuple[int, ...], num_outputs: int, *, depth: int = 4, width: int = 64
            ) -> nn.Sequential:
    """``depth`` AOL layers with ReLU, then an AOL readout: a 1-Lipschitz classifier.

    Deviations from the paper: the AOL layer is Prach & Lampert's (not a papers.md row), whose
    initialization row 64 analyses; the architecture (``depth`` AOL layers with ReLU, default depth
    4 and width 64) is this library's small test network, not the paper's experimental architecture
    (not re-read for this paragraph).
    """
    check_range("depth", depth, low=0, owner="aol-mlp")
    fan_in = math.prod(input_shape)
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(depth):
        layers += [AOLLinear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(AOLLinear(fan_in, num_outputs))
    return nn.Sequential(*layers)


def sll_net(input_shape: tuple[int, ...], num_outputs: int, *, depth: int = 4, width: int = 64
            ) -> nn.Sequential:
    """AOL stem to ``width``, ``depth`` SLL blocks, AOL readout (all 1-Lipschitz).

    Deviations from the paper: the SLL block is Araujo et al.'s (not a papers.md row), whose
    initialization row 64 analyses; the stack (AOL stem, ``depth`` SLL blocks, AOL readout, default
    depth 4 and width 64) is this library's small test network, not the paper's experimental
    architecture (not re-read for this paragraph).
    """
    check_range("depth", depth, low=0, owner="sll-net")
    layers: list[nn.Module] = [nn.Flatten(), AOLLinear(math.prod(input_shape), width)]
    layers += [SLLBlock(width) for _ in range(depth)]
    layers.append(AOLLinear(width, num_outputs))
    return nn.Sequential(*layers)


MODELS.register("aol-mlp", aol_mlp, papers=(64,), summary="1-Lipschitz MLP of AOL layers + ReLU")
MODELS.register("sll-net", sll_net, papers=(64,), summary="1-Lipschitz net of SLL residual blocks")
