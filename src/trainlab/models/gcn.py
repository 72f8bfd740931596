"""A small graph convolutional network (Kipf & Welling 2017) on a dense adjacency matrix,
the model Virgo's initialization is applied to (papers.md row 77)."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import ConfigError, check_range


def normalized_adjacency(adjacency: torch.Tensor, self_loops: bool = True) -> torch.Tensor:
    r""":math:`\hat A = D^{-1/2}(A + I)D^{-1/2}` (DGL ``GraphConv(norm="both")`` after adding
    self-loops), for a dense symmetric 0/1 (or weighted) adjacency ``(N, N)``."""
    if adjacency.dim() != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ConfigError(f"adjacency must be square (N, N), got {tuple(adjacency.shape)}")
    a = adjacency.double()
    if self_loops:
        a = a + torch.eye(a.shape[0], dtype=a.dtype)
    deg = a.sum(dim=1)
    if (deg <= 0).any():
        raise ConfigError("adjacency has isolated nodes without self-loops (degree 0)")
    inv = deg.rsqrt()
    return (inv[:, None] * a * inv[None, :]).to(adjacency.dtype if adjacency.is_floating_point()
                                                else torch.get_default_dtype())


class GCN(nn.Module):
    """``layers`` graph convolutions ``H <- act(Â H W + b)`` (no activation after the last),
    over a fixed graph (transductive node classification): ``forward(x)`` takes node features
    ``(N, in_features)`` and returns node logits ``(N, num_classes)``. The convolutions' linear
    maps are ``self.convs[i]`` (``nn.Linear``)."""

    def __init__(self, adjacency: torch.Tensor, in_features: int, num_classes: int, *,
                 hidden: int = 64, layers: int = 2, activation: nn.Module | None = None):
        super().__init__()
        check_range("layers", layers, low=1, owner="GCN")
        check_range("hidden", hidden, low=1, owner="GCN")
        self.register_buffer("adjacency", normalized_adjacency(adjacency))
        widths = [in_features] + [hidden] * (layers - 1) + [num_classes]
        self.convs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = activation if activation is not None else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.adjacency.to(x.dtype)
        for i, conv in enumerate(self.convs):
            x = a @ (x @ conv.weight.T)
            if conv.bias is not None:
                x = x + conv.bias
            if i < len(self.convs) - 1:
                x = self.act(x)
        return x
