"""Ghost batch norm (row 37) against nn.BatchNorm1d applied to each virtual batch alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.ghost_batch_norm import GhostBatchNorm1d


def _x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize("shape", [(40, 3), (40, 3, 5)])
def test_each_chunk_is_normalized_as_batch_norm_would(shape):
    x = _x(*shape)
    gbn = GhostBatchNorm1d(3, virtual_batch_size=16).double()
    with torch.no_grad():
        gbn.weight.copy_(torch.tensor([1.0, 2.0, -1.0]))
        gbn.bias.copy_(torch.tensor([0.0, 0.5, 1.0]))
    out = gbn(x)
    means, variances = [], []
    for start, chunk in zip((0, 16, 32), x.split(16), strict=True):
        bn = nn.BatchNorm1d(3, momentum=1.0).double()  # momentum 1: running stats = chunk stats
        bn.load_state_dict({**bn.state_dict(), "weight": gbn.weight.detach(),
                            "bias": gbn.bias.detach()})
        torch.testing.assert_close(out[start:start + len(chunk)], bn(chunk))
        means.append(bn.running_mean)
        variances.append(bn.running_var)
    torch.testing.assert_close(gbn.running_mean, 0.1 * torch.stack(means).mean(0))
    torch.testing.assert_close(gbn.running_var, 0.9 + 0.1 * torch.stack(variances).mean(0))


def test_reduces_to_batch_norm_and_uses_running_stats_in_eval():
    x = _x(12, 4)
    gbn, bn = GhostBatchNorm1d(4, virtual_batch_size=12).double(), nn.BatchNorm1d(4).double()
    torch.testing.assert_close(gbn(x), bn(x))
    torch.testing.assert_close(gbn.running_var, bn.running_var)
    gbn.eval()
    bn.eval()
    torch.testing.assert_close(gbn(x), bn(x))


def test_gradients_flow_and_bad_arguments():
    x = _x(20, 3).requires_grad_()
    GhostBatchNorm1d(3, virtual_batch_size=8).double()(x).pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(ConfigError, match="virtual_batch_size"):
        GhostBatchNorm1d(3, virtual_batch_size=0)
