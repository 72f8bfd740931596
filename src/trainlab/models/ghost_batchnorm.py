r"""Ghost batch normalization (Hoffer, Hubara & Soudry, "Train longer, generalize better:
closing the generalization gap in large batch training of neural networks", NeurIPS 2017;
papers.md row 37)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError, check_range


class GhostBatchNorm(nn.Module):
    r"""Batch normalization computed over *virtual* ("ghost") batches of ``ghost_batch_size``
    samples: in training mode the batch is split along dimension 0 into consecutive chunks of
    ``ghost_batch_size`` (the last one may be smaller) and each chunk is normalized with its
    own mean and (biased) variance,

    .. math:: \hat x = \gamma\,\frac{x - \mu_{\text{ghost}}}{\sqrt{\sigma^2_{\text{ghost}}
        + \epsilon}} + \beta,

    so a large batch sees the normalization noise of a small one (the paper's Algorithm 1).
    The running statistics are updated once per ghost batch, in order, with the usual
    momentum (or the cumulative average when ``momentum=None``): exactly what
    ``nn.BatchNorm`` would do if called on each chunk in turn. In eval mode (or when the
    batch has at most ``ghost_batch_size`` samples) it is plain batch normalization.

    Works for inputs ``(N, C)`` and ``(N, C, *)``; parameters and buffers have BatchNorm's
    names (``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``),
    so state dicts are interchangeable with ``nn.BatchNorm1d/2d/3d``.

    Args:
        num_features: channels :math:`C`.
        ghost_batch_size: virtual batch size (the paper uses 128 for large-batch training).
        eps, momentum, affine, track_running_stats: as ``nn.BatchNorm``.
    """

    def __init__(self, num_features: int, ghost_batch_size: int = 128, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__()
        owner = "GhostBatchNorm"
        check_range("num_features", num_features, low=1, owner=owner)
        check_range("ghost_batch_size", ghost_batch_size, low=1, owner=owner)
        check_range("eps", eps, low=0.0, low_open=True, owner=owner)
        if momentum is not None:
            check_range("momentum", momentum, low=0.0, high=1.0, owner=owner)
        self.num_features, self.ghost_batch_size = int(num_features), int(ghost_batch_size)
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def _batch_norm(self, x: torch.Tensor) -> torch.Tensor:
        use_batch = self.training or not self.track_running_stats
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                      else self.momentum)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_batch, factor, self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ConfigError(f"GhostBatchNorm expects input (N, {self.num_features}, *). "
                              f"Got shape {tuple(x.shape)} instead.")
        if not self.training or x.shape[0] <= self.ghost_batch_size:
            return self._batch_norm(x)
        return torch.cat([self._batch_norm(c) for c in x.split(self.ghost_batch_size)])

    def extra_repr(self) -> str:
        return (f"{self.num_features}, ghost_batch_size={self.ghost_batch_size}, "
                f"eps={self.eps}, momentum={self.momentum}, affine={self.affine}")
