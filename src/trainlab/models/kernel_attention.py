r"""A single attention layer with a choice of attention kernel: softmax or Gaussian (Song, Han,
Zhang, Ding & Hong, "Unraveling the Gradient Descent Dynamics of Transformers", NeurIPS 2024;
papers.md row 11).

For tokens :math:`x_1..x_T \in \mathbb R^d` (rows of :math:`X`), queries
:math:`q_i = W_Q^\top x_i`, keys :math:`k_j = W_K^\top x_j`:

- softmax kernel: :math:`A_{ij} = \exp(q_i^\top k_j/\sqrt d) / \sum_l \exp(q_i^\top k_l/\sqrt d)`;
- Gaussian kernel: :math:`A_{ij} = \exp(-\|q_i - k_j\|^2 / (2\sqrt d))` (no row normalization).

The layer's output is :math:`A X W_V`, averaged over the tokens (``readout="mean"``) or per
token (``readout="all"``). The paper compares the two kernels' loss landscapes: with a suitable
initialization gradient descent reaches a global minimum with either when d is large, but the
softmax kernel can get stuck at suboptimal points where the Gaussian one does not.

Deviation / uncertain: the Gaussian kernel's exact scaling (the :math:`2\sqrt d` bandwidth)
and the absence of row normalization follow the Skyformer-style kernel the paper builds on,
as recalled, not re-read in the paper; ``gaussian_normalize=True`` gives the row-normalized
variant.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.errors import ConfigError, check_choice
from trainlab.models._registry import MODELS

KERNELS = ("softmax", "gaussian")


def attention_matrix(q: torch.Tensor, k: torch.Tensor, kernel: str,
                     normalize: bool = False) -> torch.Tensor:
    """``(..., T, T)`` attention weights from queries and keys ``(..., T, d_k)``; the scale
    uses ``d_k``."""
    check_choice("kernel", kernel, KERNELS, owner="attention")
    d = q.shape[-1]
    if kernel == "softmax":
        return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
    a = torch.exp(-torch.cdist(q, k).pow(2) / (2 * math.sqrt(d)))  # gaussian
    return a / a.sum(-1, keepdim=True) if normalize else a


class KernelAttention(nn.Module):
    """One attention layer ``A(X) X W_V`` on float token inputs ``(N, T, d)``.

    ``W_Q, W_K: (d, d)`` and ``W_V: (d, num_outputs)`` are bias-free ``nn.Linear`` maps
    (``query``, ``key``, ``value``)."""

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, *,
                 kernel: str = "softmax", readout: str = "mean",
                 gaussian_normalize: bool = False):
        super().__init__()
        if len(input_shape) != 2:
            raise ConfigError(f"kernel-attention: input_shape must be (tokens, dim). Got "
                              f"{input_shape!r} instead.")
        check_choice("kernel", kernel, KERNELS, owner="kernel-attention")
        check_choice("readout", readout, ("mean", "all"), owner="kernel-attention")
        d = input_shape[1]
        self.kernel, self.readout, self.gaussian_normalize = kernel, readout, gaussian_normalize
        self.query = nn.Linear(d, d, bias=False)
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, num_outputs, bias=False)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(N, T, T)`` attention weights."""
        return attention_matrix(self.query(x), self.key(x), self.kernel, self.gaussian_normalize)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.value(self.attention(x) @ x)
        return out.mean(1) if self.readout == "mean" else out


MODELS.register("kernel-attention", KernelAttention, papers=(11,),
                summary="single attention layer with softmax or Gaussian kernel (float tokens)")
