"""adam_step_: torch's private fused kernel and the public fallback both equal torch.optim's
Adam/AdamW (single-tensor reference) in float64, with AMSGrad, weight decay and maximize."""

from __future__ import annotations

import logging

import pytest
import torch

import trainlab.optim._fused_adam as fused_adam
from trainlab.errors import ConfigError
from trainlab.optim._fused_adam import adam_step_, private_kernel_available


def _tensors(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64) for s in ((5, 4), (7,))]


@pytest.mark.parametrize("impl", ["private", "public"])
@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("maximize", [False, True])
def test_adam_step_equals_torch_adam(impl, decoupled, amsgrad, maximize):
    if impl == "private" and not private_kernel_available("cpu", torch.float64):
        pytest.skip("torch has no tested private fused Adam kernel")
    hyper = dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, amsgrad=amsgrad,
                 maximize=maximize)
    ref_params = [p.clone().requires_grad_(True) for p in _tensors(0)]
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    ref = cls(ref_params, foreach=False, **hyper)
    params = [p.clone() for p in _tensors(0)]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    vmax = [torch.zeros_like(p) for p in params]
    for t in range(1, 8):
        grads = _tensors(100 + t)
        for p, g in zip(ref_params, grads):
            p.grad = g.clone()
        ref.step()
        g0 = [g.clone() for g in grads]
        adam_step_(params, grads, m, v, vmax, float(t), lr=0.05, beta1=0.8, beta2=0.95,
                   weight_decay=0.1, eps=1e-6, maximize=maximize, amsgrad=amsgrad,
                   decoupled=decoupled, impl=impl)
        assert all(torch.equal(a, b) for a, b in zip(grads, g0))
    for a, b in zip(params, ref_params):
        torch.testing.assert_close(a, b.detach(), rtol=1e-12, atol=1e-14)


def test_auto_falls_back_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(fused_adam, "private_kernel_available", lambda *_: False)
    import trainlab.log

    monkeypatch.setattr(trainlab.log, "_WARNED", set())
    params, grads = _tensors(0), _tensors(1)
    zeros = [[torch.zeros_like(p) for p in params] for _ in range(2)]
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        for t in (1, 2):
            adam_step_(params, grads, *zeros, [], float(t), lr=0.1, beta1=0.9, beta2=0.99,
                       weight_decay=0.0, eps=1e-8, maximize=False)
    assert sum("public tensor methods" in r.message for r in caplog.records) == 1


def test_version_gate_rejects_untested_torch(monkeypatch):
    monkeypatch.setattr(fused_adam, "_torch_version", lambda: (99, 0))
    assert not private_kernel_available()


def test_bad_impl_is_a_config_error():
    with pytest.raises(ConfigError, match="'impl'"):
        adam_step_([], [], [], [], [], 1.0, lr=0.1, beta1=0.9, beta2=0.99, weight_decay=0.0,
                   eps=1e-8, maximize=False, impl="cuda")


@pytest.mark.parametrize("kernel", ["raises", "wrong-numbers"])
def test_kernel_check_rejects_a_missing_or_wrong_kernel(monkeypatch, kernel):
    """torch 2.1-2.3 have the kernels for CUDA only (NotImplementedError on the CPU): the
    check then says no, and a kernel whose numbers differ from the public path's is refused
    too."""
    def fake(params, grads, *args, **kwargs):
        if kernel == "raises":
            raise NotImplementedError("Could not run 'aten::_fused_adam_' on 'CPU'")
        for p, g in zip(params, grads):
            p.sub_(0.1 * g)  # plain SGD, not Adam

    monkeypatch.setattr(fused_adam, "_torch_version", lambda: fused_adam.TESTED_TORCH[0])
    monkeypatch.setattr(torch, "_fused_adam_", fake, raising=False)
    monkeypatch.setattr(torch, "_fused_adamw_", fake, raising=False)
    fused_adam._kernel_agrees.cache_clear()
    try:
        assert not private_kernel_available("cpu", torch.float64)
    finally:
        fused_adam._kernel_agrees.cache_clear()


def test_kernel_check_accepts_the_public_step(monkeypatch):
    """A 'kernel' that is the public step itself passes the check (so the check is not one
    that always says no)."""
    def as_public(decoupled):
        def kernel(params, grads, exp_avgs, exp_avg_sqs, maxes, steps, **kw):
            kw.pop("grad_scale", None), kw.pop("found_inf", None)
            adam_step_(params, grads, exp_avgs, exp_avg_sqs, maxes, float(steps[0]),
                       decoupled=decoupled, impl="public", **kw)
        return kernel

    monkeypatch.setattr(fused_adam, "_torch_version", lambda: fused_adam.TESTED_TORCH[0])
    monkeypatch.setattr(torch, "_fused_adam_", as_public(False), raising=False)
    monkeypatch.setattr(torch, "_fused_adamw_", as_public(True), raising=False)
    fused_adam._kernel_agrees.cache_clear()
    try:
        assert private_kernel_available("cpu", torch.float64)
    finally:
        fused_adam._kernel_agrees.cache_clear()
