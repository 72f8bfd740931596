"""``HessianOperator(method="auto")``, the default: double-backward products equal to the
forward-over-reverse ones to float tolerance, and a logged switch to forward-over-reverse when
double backward fails."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.curvature import HessianOperator


def problem(dtype: torch.dtype):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 9), nn.Tanh(), nn.Linear(9, 4)).to(dtype)
    g = torch.Generator().manual_seed(1)
    return model, (torch.randn(11, 6, generator=g, dtype=dtype), torch.randint(0, 4, (11,),
                                                                              generator=g))


def dense_hessian(model: nn.Module, batch) -> torch.Tensor:
    model = copy.deepcopy(model).double()
    params = {n: p.detach().double() for n, p in model.named_parameters()}
    sizes = [p.numel() for p in params.values()]
    x, y = batch

    def loss(flat: torch.Tensor) -> torch.Tensor:
        parts = dict(zip(params, (t.view_as(p) for t, p in zip(flat.split(sizes),
                                                                 params.values()))))
        return F.cross_entropy(torch.func.functional_call(model, parts, (x.double(),)),
                               y)

    h = torch.autograd.functional.hessian(loss, torch.cat([p.reshape(-1)
                                                           for p in params.values()]))
    return h


def test_auto_is_the_default_and_uses_double_backward(monkeypatch):
    model, batch = problem(torch.float64)
    op = HessianOperator(model, F.cross_entropy, batch)
    assert op.method == "auto"
    calls = []
    original = HessianOperator._double_backward
    monkeypatch.setattr(HessianOperator, "_double_backward",
                        lambda self, *a: calls.append(1) or original(self, *a))
    op.matvec(torch.ones(op.dim, dtype=torch.float64))
    assert calls == [1]


@pytest.mark.parametrize("dtype,rtol,atol", [(torch.float64, 1e-12, 1e-13),
                                             (torch.float32, 1e-5, 1e-6)])
def test_auto_products_equal_forward_over_reverse_and_dense(dtype, rtol, atol):
    model, batch = problem(dtype)
    auto = HessianOperator(model, F.cross_entropy, batch)
    fwd = HessianOperator(model, F.cross_entropy, batch, method="forward-over-reverse")
    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        v = torch.randn(auto.dim, generator=g, dtype=dtype)
        torch.testing.assert_close(auto.matvec(v), fwd.matvec(v), rtol=rtol, atol=atol)
    h = dense_hessian(model, batch)
    torch.testing.assert_close(auto.matvec(v).double(), h @ v.double(), rtol=rtol * 10,
                               atol=atol * 10)
    block = torch.randn(auto.dim, 3, generator=g, dtype=dtype)
    assert torch.equal(auto.matmat(block), fwd.matmat(block))  # matmat: the same vmap path


def test_auto_switches_to_forward_over_reverse_once_with_a_warning(monkeypatch, caplog):
    def broken(self, *args):
        raise RuntimeError("derivative for this operator is not implemented")

    model, batch = problem(torch.float64)
    fwd = HessianOperator(model, F.cross_entropy, batch, method="forward-over-reverse")
    monkeypatch.setattr(HessianOperator, "_double_backward", broken)
    auto = HessianOperator(model, F.cross_entropy, batch, retain_graph=True)
    v = torch.randn(auto.dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        first, second = auto.matvec(v), auto.matvec(2 * v)
    assert torch.equal(first, fwd.matvec(v)) and torch.equal(second, fwd.matvec(2 * v))
    warned = [r for r in caplog.records if "forward-over-reverse" in r.getMessage()]
    assert len(warned) == 1 and "not implemented" in warned[0].getMessage()
    # an explicit method never falls back
    with pytest.raises(RuntimeError, match="not implemented"):
        HessianOperator(model, F.cross_entropy, batch, method="double-backward").matvec(v)
