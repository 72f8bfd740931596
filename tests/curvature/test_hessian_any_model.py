"""The Hessian operator on models that are not plain MLPs: BatchNorm in training mode, a
model computing its own loss from a tuple of arguments, an LSTM without forward-mode
derivatives (dense float64 references)."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from curvature_reference import DT, flat_params, split
from torch import nn
from torch.func import functional_call

from trainlab.curvature import HessianOperator


def dense(model: nn.Module, loss) -> torch.Tensor:
    """Dense Hessian of ``loss(params)`` over the model's parameters, flattened."""
    return torch.autograd.functional.hessian(lambda f: loss(split(model, f)),
                                             flat_params(model))


def test_batchnorm_in_training_mode_uses_the_batch_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))
    model = model.to(DT).train()
    x, y = torch.randn(6, 3, dtype=DT), torch.randint(0, 2, (6,))
    buffers = {n: b.clone() for n, b in model.named_buffers()}

    def loss(p):
        fresh = {n: b.clone() for n, b in buffers.items()}
        return F.cross_entropy(functional_call(model, (p, fresh), (x,)), y)

    h = dense(model, loss)
    op = HessianOperator(model, F.cross_entropy, (x, y))  # forward-over-reverse
    eye = torch.eye(op.dim, dtype=DT)
    torch.testing.assert_close(op.matmat(eye), h, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(op.matvec(eye[:, 2]), h[:, 2], rtol=1e-8, atol=1e-10)
    for n, b in model.named_buffers():  # running statistics untouched
        assert torch.equal(b, buffers[n]), n


class OwnLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))

    def forward(self, x, y):
        return F.mse_loss(self.net(x).squeeze(-1), y)


def test_a_model_computing_its_own_loss_from_a_tuple_of_arguments():
    torch.manual_seed(1)
    model = OwnLoss().to(DT)
    x, y = torch.randn(5, 3, dtype=DT), torch.randn(5, dtype=DT)
    h = dense(model, lambda p: functional_call(model, p, (x, y)))
    op = HessianOperator(model, None, ((x, y), None))
    eye = torch.eye(op.dim, dtype=DT)
    torch.testing.assert_close(op.matvec(eye[:, 0]), h[:, 0], rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(op.matmat(eye), h, rtol=1e-8, atol=1e-10)


def test_matmat_falls_back_to_columns_without_forward_mode(monkeypatch, caplog):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(DT)
    x, y = torch.randn(5, 3, dtype=DT), torch.randint(0, 2, (5,))
    op = HessianOperator(model, F.cross_entropy, (x, y), method="double-backward",
                         retain_graph=True)
    eye = torch.eye(op.dim, dtype=DT)
    expected = torch.stack([op.matvec(c) for c in eye.T], 1)

    def no_forward_mode(self, tangent, batch):
        raise NotImplementedError("Trying to use forward AD with this layer")

    monkeypatch.setattr(HessianOperator, "_product", no_forward_mode)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        torch.testing.assert_close(op.matmat(eye), expected, rtol=0, atol=0)
        op.matmat(eye[:, :2])
    warned = [r for r in caplog.records if "column by column" in r.getMessage()]
    assert len(warned) == 1
