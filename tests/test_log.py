"""Fallbacks are reported on the ``trainlab`` logger (once per process and reason)."""

import logging

import pytest
import torch
from torch import nn

import trainlab.log
from trainlab.init.conv_aware import conv_aware_
from trainlab.init.orthogonal import orthogonal_
from trainlab.integrations._optimizer_steps import join_batches
from trainlab.probes.per_sample import per_sample_grad_stats
from trainlab.train import Monitor


@pytest.fixture
def fresh_log(monkeypatch, caplog):
    monkeypatch.setattr(trainlab.log, "_WARNED", set())
    caplog.set_level(logging.WARNING, logger="trainlab")
    return caplog


def messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "trainlab"]


def test_warn_once_logs_each_reason_once(fresh_log):
    assert trainlab.log.warn_once("a", "first %d", 1)
    assert not trainlab.log.warn_once("a", "again")
    assert trainlab.log.warn_once("b", "other")
    assert messages(fresh_log) == ["first 1", "other"]


class NoDoubleTanh(torch.autograd.Function):
    """tanh with a first backward and a forward-mode rule (so torch.func can take
    forward-over-reverse products) but whose backward refuses to be differentiated again,
    like an operator without a double-backward formula."""

    @staticmethod
    def forward(x):
        return torch.tanh(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)
        ctx.y = output

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        if torch.is_grad_enabled() and not torch._C._functorch.is_functorch_wrapped_tensor(g):
            raise RuntimeError("NoDoubleTanh has no double backward")
        return g * (1 - y * y)

    @staticmethod
    def jvp(ctx, t):
        return t * (1 - ctx.y * ctx.y)


class Net(nn.Module):
    def __init__(self, no_double: bool):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
        self.no_double = no_double

    def forward(self, x):
        h = self.a(x)
        return self.b(NoDoubleTanh.apply(h) if self.no_double else torch.tanh(h))


def sharpness(model, x, y):
    mon = Monitor(model, loss_fn=nn.functional.mse_loss, probes="sharpness", every=1)
    model.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    mon.step(loss, (x, y))
    mon.finish()
    return mon.last("sharpness")


def test_hessian_without_double_backward_falls_back_with_a_warning(fresh_log):
    """The forward-over-reverse path gives the same top eigenvalue, and says it was taken."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 3, generator=g, dtype=torch.float64), torch.randn(16, 1, generator=g,
                                                                             dtype=torch.float64)
    want = sharpness(Net(no_double=False).double(), x, y)
    assert messages(fresh_log) == []
    got = sharpness(Net(no_double=True).double(), x, y)
    assert got == pytest.approx(want, rel=1e-6)
    assert any("no double backward" in m for m in messages(fresh_log))


def test_per_example_gradients_by_vmap_are_reported(fresh_log):
    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(16, 1))
    x, y = torch.randn(4, 1, 10), torch.randn(4, 1)
    per_sample_grad_stats(model, nn.functional.mse_loss, x, y)
    per_sample_grad_stats(model, nn.functional.mse_loss, x, y)
    got = [m for m in messages(fresh_log) if "vmap" in m]
    assert len(got) == 1 and "Sequential" in got[0]


def test_conv_aware_on_a_matrix_is_orthogonal_and_says_so(fresh_log):
    def g():
        return torch.Generator().manual_seed(0)

    w = conv_aware_(torch.empty(4, 6), generator=g())
    assert torch.equal(w, orthogonal_(torch.empty(4, 6), generator=g()))
    assert any("orthogonal_ instead" in m for m in messages(fresh_log))


def test_micro_batches_that_cannot_be_joined_are_reported(fresh_log):
    assert join_batches(["a", "b"]) == "b"
    assert join_batches([(torch.ones(2), 1), (torch.zeros(3), 2)])[0].shape == (5,)
    assert any("cannot join micro-batches of type str" in m for m in messages(fresh_log))
