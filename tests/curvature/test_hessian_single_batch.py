"""The one-batch double-backward product skips the zero vector it used to be added to; the
product is the same to the bit (up to the sign of an exact zero)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.curvature import HessianOperator


def test_one_batch_product_equals_the_weighted_sum_bitwise():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    x, y = torch.randn(32, 6), torch.randint(0, 4, (32,))
    op = HessianOperator(model, F.cross_entropy, (x, y), method="double-backward",
                         retain_graph=True)
    for seed in range(3):
        v = torch.randn(op.dim, generator=torch.Generator().manual_seed(seed))
        fast = op.matvec(v)
        # the general path: a zero vector plus the batch's weight (1.0) times its product
        slow = torch.zeros(op.dim) + op.weights[0] * op._join(
            op._double_backward(op._split(v), op.batches[0], 0), ())
        assert op.weights == [1.0]
        assert torch.equal(fast, slow)
    # the product is the Hessian's: against the dense float64 Hessian
    dense_op = HessianOperator(model.double(), F.cross_entropy, (x.double(), y),
                               method="double-backward")
    h = torch.stack([dense_op.matvec(e) for e in torch.eye(dense_op.dim, dtype=torch.float64)])
    assert torch.allclose(fast.double(), h @ v.double(), rtol=1e-4, atol=1e-5)


def test_several_batches_still_average_by_size():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    x, y = torch.randn(30, 3, dtype=torch.float64), torch.randint(0, 2, (30,))
    whole = HessianOperator(model, F.cross_entropy, (x, y), method="double-backward")
    parts = HessianOperator(model, F.cross_entropy, [(x[:10], y[:10]), (x[10:], y[10:])],
                            method="double-backward")
    v = torch.randn(whole.dim, dtype=torch.float64)
    assert torch.allclose(whole.matvec(v), parts.matvec(v), rtol=1e-10, atol=1e-12)
