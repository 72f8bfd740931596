"""GhostBatchNorm equals nn.BatchNorm applied to each virtual batch in turn (outputs, running
statistics, gradients), and is plain BatchNorm in eval mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.ghost_batchnorm import GhostBatchNorm


@pytest.mark.parametrize("shape,bn_cls,momentum", [((22, 3), nn.BatchNorm1d, 0.1),
                                                    ((20, 3, 4, 5), nn.BatchNorm2d, None)])
def test_equals_batchnorm_per_virtual_batch(shape, bn_cls, momentum):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 1
    ghost = GhostBatchNorm(3, ghost_batch_size=8, momentum=momentum).double()
    bn = bn_cls(3, momentum=momentum).double()
    with torch.no_grad():
        for m in (ghost, bn):
            m.weight.copy_(torch.tensor([1.5, -0.5, 2.0]))
            m.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    xg = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    for _ in range(2):  # two training steps: running statistics accumulate
        out = ghost(xg)
        ref = torch.cat([bn(c) for c in xb.split(8)])
        torch.testing.assert_close(out, ref)
    w = torch.randn(out.shape, generator=g, dtype=torch.float64)
    (out * w).sum().backward()
    (ref * w).sum().backward()
    torch.testing.assert_close(xg.grad, xb.grad)
    torch.testing.assert_close(ghost.weight.grad, bn.weight.grad)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ghost, name), getattr(bn, name))
    ghost.eval()
    bn.eval()
    torch.testing.assert_close(ghost(x), bn(x))
    assert set(ghost.state_dict()) == set(bn.state_dict())


def test_chunks_are_normalized_separately():
    x = torch.cat([torch.zeros(4, 2), 10 * torch.ones(4, 2)]) \
        + torch.arange(8.0).repeat(2, 1).T % 4
    out = GhostBatchNorm(2, ghost_batch_size=4)(x)
    for chunk in out.split(4):
        torch.testing.assert_close(chunk.mean(0), torch.zeros(2), atol=1e-6, rtol=0)


def test_validation():
    with pytest.raises(ConfigError, match="ghost_batch_size"):
        GhostBatchNorm(3, ghost_batch_size=0)
    with pytest.raises(ConfigError, match=r"\(N, 3, \*\)"):
        GhostBatchNorm(3)(torch.zeros(4, 2))
