"""``HessianOperator`` refuses a model with a ``@once_differentiable`` custom Function, through
which double backward silently drops second-derivative terms, instead of returning a wrong
product; the same Function with a differentiable backward gives the dense float64 Hessian."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from trainlab.curvature import HessianOperator
from trainlab.curvature.training_hessian import training_hessian
from trainlab.errors import ConfigError


class Softplus(torch.autograd.Function):
    """softplus with a hand-written, differentiable backward (sigmoid of the saved input)."""

    @staticmethod
    def forward(x):
        return F.softplus(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.sigmoid(x)

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return t * torch.sigmoid(x)


class OnceSoftplus(Softplus):
    """The same, its backward marked once differentiable."""

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.sigmoid(x)


class Net(nn.Module):
    def __init__(self, act):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a, self.b, self.act = nn.Linear(3, 4), nn.Linear(4, 1), act
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.double()

    def forward(self, x):
        return self.b(self.act(self.a(x)))


def data():
    g = torch.Generator().manual_seed(1)
    return (torch.randn(8, 3, generator=g, dtype=torch.float64),
            torch.randn(8, 1, generator=g, dtype=torch.float64))


def dense_hessian(model, batch):
    """Dense float64 Hessian of the same loss with torch's own softplus."""
    ref = Net(F.softplus)
    ref.load_state_dict(model.state_dict())
    params = {n: p.detach() for n, p in ref.named_parameters()}
    sizes = [p.numel() for p in params.values()]

    def loss(flat):
        parts = dict(zip(params, (t.view_as(p) for t, p in zip(flat.split(sizes),
                                                                 params.values()))))
        return F.mse_loss(torch.func.functional_call(ref, parts, (batch[0],)), batch[1])

    flat = torch.cat([p.reshape(-1) for p in params.values()])
    return torch.autograd.functional.hessian(loss, flat)


def test_a_differentiable_custom_backward_gives_the_dense_hessian():
    model, batch = Net(Softplus.apply), data()
    h = dense_hessian(model, batch)
    v = torch.randn(h.shape[0], generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64)
    for method in ("auto", "double-backward", "forward-over-reverse"):
        op = HessianOperator(model, F.mse_loss, batch, method=method)
        torch.testing.assert_close(op.matvec(v), h @ v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["auto", "double-backward", "forward-over-reverse"])
def test_a_once_differentiable_backward_is_refused_not_silently_wrong(method):
    model, batch = Net(OnceSoftplus.apply), data()
    op = HessianOperator(model, F.mse_loss, batch, method=method)
    # before the check every method returned a product off the dense one, with no error
    with torch.no_grad(), pytest.raises(ConfigError, match="OnceSoftplus.*once_differentiable"):
        op.matvec(torch.ones(op.dim, dtype=torch.float64))
    with pytest.raises(ConfigError, match="OnceSoftplus"):
        op.matmat(torch.eye(op.dim, dtype=torch.float64)[:, :2])


def test_double_backward_through_it_is_silently_wrong():
    """Why it is refused: plain double backward through the once-differentiable backward
    raises nothing and misses the Function's second derivative (the defect before the
    check: top eigenvalue 16.70 against the dense 18.69)."""
    model, batch = Net(OnceSoftplus.apply), data()
    h = dense_hessian(model, batch)
    params = list(model.parameters())
    grads = torch.autograd.grad(F.mse_loss(model(batch[0]), batch[1]), params,
                                create_graph=True)
    cols = []
    for e in torch.eye(h.shape[0], dtype=torch.float64):
        parts = e.split([p.numel() for p in params])
        dot = sum((g * t.view_as(g)).sum() for g, t in zip(grads, parts))
        hv = torch.autograd.grad(dot, params, retain_graph=True, allow_unused=True)
        cols.append(torch.cat([torch.zeros(p.numel(), dtype=p.dtype) if x is None
                               else x.reshape(-1) for x, p in zip(hv, params)]))
    wrong = torch.stack(cols, 1)
    assert (wrong - h).abs().max() > 1.0
    assert torch.linalg.eigvalsh(h)[-1] - torch.linalg.eigvalsh((wrong + wrong.T) / 2)[-1] > 1.0


def test_the_sharpness_probe_operator_refuses_it_too():
    model, batch = Net(OnceSoftplus.apply), data()
    with pytest.raises(ConfigError, match="OnceSoftplus"):
        training_hessian(model, F.mse_loss, batch)
