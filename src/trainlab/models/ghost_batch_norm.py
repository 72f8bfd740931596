r"""Ghost batch normalization: batch-norm statistics over small virtual ("ghost") batches of a
large batch (Hoffer, Hubara & Soudry, "Train longer, generalize better: closing the
generalization gap in large batch training of neural networks", NeurIPS 2017; papers.md
row 37).

In training mode a batch of B samples is split into consecutive chunks of
``virtual_batch_size`` (the last one may be smaller) and each chunk is normalized with its
own mean and (biased) variance, so a large-batch step sees the same normalization noise as a
small-batch one. The running statistics move once per call towards the average over chunks
of the chunk means and unbiased chunk variances, with ``momentum`` as in
``nn.BatchNorm1d``. In eval mode the running statistics are used, exactly as batch norm does.
With ``virtual_batch_size >= B`` the layer is ``nn.BatchNorm1d``.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import check_range


class GhostBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` (inputs ``(N, C)`` or ``(N, C, L)``) whose training-mode statistics
    come from virtual batches of ``virtual_batch_size`` samples."""

    def __init__(self, num_features: int, virtual_batch_size: int = 128, eps: float = 1e-5,
                 momentum: float = 0.1, affine: bool = True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine,
                         track_running_stats=True)
        check_range("virtual_batch_size", virtual_batch_size, low=1, owner="GhostBatchNorm1d")
        self.virtual_batch_size = virtual_batch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] <= self.virtual_batch_size:
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        outs, means, variances = [], [], []
        for chunk in x.split(self.virtual_batch_size):
            mean = chunk.mean(dims, keepdim=True)
            var = chunk.var(dims, unbiased=False, keepdim=True)
            outs.append((chunk - mean) / torch.sqrt(var + self.eps))
            count = chunk.numel() // chunk.shape[1]
            means.append(mean.flatten())
            variances.append(var.flatten() * count / max(count - 1, 1))
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * torch.stack(means).mean(0))
            self.running_var.mul_(1 - m).add_(m * torch.stack(variances).mean(0))
        y = torch.cat(outs)
        if self.affine:
            shape = [1, -1] + [1] * (x.dim() - 2)
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

