"""trainlab's optimizers call torch.optim.Optimizer's dynamo-disabled methods unwrapped
while torch._dynamo is not imported (trainlab.optim._lazy_dynamo): the wrapped method
otherwise, and the same results either way."""

from __future__ import annotations

import sys
import types

import torch

import trainlab.optim._lazy_dynamo as lazy
from trainlab.optim import build_optimizer

METHODS = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def _roundtrip():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 3, generator=g).requires_grad_()
    b = torch.randn(5, generator=g).requires_grad_()
    opt = build_optimizer("gd", [a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [b], "lr": 0.05})
    for k in range(2):
        a.grad, b.grad = torch.randn(4, 3, generator=g), torch.randn(5, generator=g)
        opt.step()
        if k == 0:
            opt.zero_grad()
            assert a.grad is None and b.grad is None
    state = opt.state_dict()
    other = build_optimizer("gd", [a.detach().clone().requires_grad_()], lr=0.1,
                            momentum=0.9)
    other.add_param_group({"params": [b.detach().clone().requires_grad_()], "lr": 0.05})
    other.load_state_dict(state)
    return a, b, state, other.state_dict()


def test_unwrapped_only_while_dynamo_is_not_imported(monkeypatch):
    # the selection rule on this torch as if it were inside the gate (the gate itself:
    # test_version_gate), so the rule is tested on every torch the suite runs on
    version = lazy._torch_version()
    monkeypatch.setattr(lazy, "LAZY_DYNAMO_TORCH", (version, version))
    real = sys.modules.get("torch._dynamo")
    monkeypatch.delitem(sys.modules, "torch._dynamo", raising=False)
    for name in METHODS:
        torch_method = getattr(torch.optim.Optimizer, name)
        assert lazy.optimizer_method(name) is getattr(torch_method, "__wrapped__", None)
    monkeypatch.setitem(sys.modules, "torch._dynamo", real or types.ModuleType("torch._dynamo"))
    for name in METHODS:
        assert lazy.optimizer_method(name) is getattr(torch.optim.Optimizer, name)


def test_version_gate(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch._dynamo", raising=False)
    monkeypatch.setattr(lazy, "LAZY_DYNAMO_TORCH", ((1, 0), (1, 13)))
    assert lazy.optimizer_method("zero_grad") is torch.optim.Optimizer.zero_grad


def test_both_paths_give_the_same_optimizer(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch._dynamo", raising=False)
    unwrapped = _roundtrip()
    monkeypatch.undo()
    import torch._dynamo  # noqa: F401  (the wrapped path, as torch defines it)

    wrapped = _roundtrip()
    for x, y in zip(unwrapped[:2], wrapped[:2]):
        assert torch.equal(x, y)
    for u, w in zip(unwrapped[2:], wrapped[2:]):
        assert u["param_groups"] == w["param_groups"]
        for k, st in u["state"].items():
            assert st.keys() == w["state"][k].keys()
            assert all(torch.equal(st[n], w["state"][k][n]) if torch.is_tensor(st[n])
                       else st[n] == w["state"][k][n] for n in st)
