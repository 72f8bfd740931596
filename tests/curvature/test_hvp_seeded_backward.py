"""The double-backward Hessian-vector product seeds the gradient graph's backward pass with
the vector itself (``grad_outputs``) instead of differentiating the scalar ``sum(g * v)``:
a speed change that must leave every product bit-identical (issue 18's rule)."""

from __future__ import annotations

import pytest
import torch
from curvature_reference import dense_hessian
from torch import nn
from torch.func import functional_call

from trainlab.curvature import HessianOperator


def scalar_form_hvp(model: nn.Module, loss_fn, x, y, v: torch.Tensor) -> torch.Tensor:
    """The product as it was computed before: d/dw of sum_i (g_i * v_i).sum()."""
    params = {n: p.detach().requires_grad_(True) for n, p in model.named_parameters()}
    loss = loss_fn(functional_call(model, params, (x,)), y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    parts, i = [], 0
    for p in params.values():
        parts.append(v[i:i + p.numel()].reshape(p.shape))
        i += p.numel()
    dot = sum((g * t).sum() for g, t in zip(grads, parts))
    hv = torch.autograd.grad(dot, list(params.values()), allow_unused=True)
    return torch.cat([torch.zeros_like(p).reshape(-1) if h is None else h.reshape(-1)
                      for p, h in zip(params.values(), hv)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("retain", [False, True])
def test_seeded_backward_equals_scalar_form_bitwise(dtype, retain):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(),
                          nn.Linear(16, 5)).to(dtype)
    x, y = torch.randn(32, 12, dtype=dtype), torch.randint(0, 5, (32,))
    loss = nn.functional.cross_entropy
    op = HessianOperator(model, loss, (x, y), method="double-backward", retain_graph=retain)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):  # with retain=True the later products reuse the kept graph
        v = torch.randn(op.dim, generator=g, dtype=dtype)
        assert torch.equal(op.matvec(v), scalar_form_hvp(model, loss, x, y, v))


def test_gradient_entries_independent_of_the_weights_and_dense_reference():
    """loss = mean of the outputs: the last bias's gradient is a constant (no graph), so it
    is left out of the seeded pass; its Hessian rows and columns are zero, as the dense
    float64 Hessian says."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.zeros(6, 2, dtype=torch.float64)

    def loss(out, _y):
        return out.mean()

    op = HessianOperator(model, loss, (x, y), method="double-backward", retain_graph=True)
    eye = torch.eye(op.dim, dtype=torch.float64)
    by_matvec = torch.stack([op.matvec(eye[:, j]) for j in range(op.dim)], dim=1)
    dense = dense_hessian(model, loss, x, y)
    torch.testing.assert_close(by_matvec, dense, rtol=1e-12, atol=1e-14)
    assert by_matvec[-2:].abs().max() == 0 and dense.abs().max() > 1e-3
    v = torch.randn(op.dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.equal(op.matvec(v), scalar_form_hvp(model, loss, x, y, v))
