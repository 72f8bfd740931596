"""The CPU fast paths (cache-sized blocks, torch's fused Adam kernel) against the readable
``_single_tensor_<name>`` references, in float64 over many steps, with blocks small enough
that big tensors are cut into chunks and small ones packed together."""

from __future__ import annotations

import pytest
import torch

from trainlab.optim import OPTIMIZERS
from trainlab.optim._chunked import blocks, can_block
from trainlab.optim.ademamix import _blocked_ademamix, _single_tensor_ademamix, ademamix
from trainlab.optim.diffgrad import _blocked_diffgrad, _single_tensor_diffgrad
from trainlab.optim.gravity import _blocked_gravity, _single_tensor_gravity
from trainlab.optim.grokfast import _fused_grokfast_ema_adamw
from trainlab.optim.transforms import tree_leaves


@pytest.fixture(autouse=True, params=["private-kernel", "public-fallback"])
def adam_kernel(request, monkeypatch):
    """Every test here runs on torch's private fused Adam kernel and on the public fallback
    that a torch without it (or an untested release) gets."""
    import trainlab.optim._fused_adam as fused_adam

    if request.param == "public-fallback":
        monkeypatch.setattr(fused_adam, "private_kernel_available", lambda *_: False)
    return request.param


SHAPES = ((7, 9), (300,), (5,), (2, 3, 4), (129,))  # 63+300+5+24+129 elements
BLOCK = 64  # cuts the (300,) and (129,) tensors, packs the others


def _tensors(seed: int, dtype=torch.float64, scale: float = 1.0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]


def _grads(steps: int, dtype=torch.float64) -> list[list[torch.Tensor]]:
    # a persistent component plus noise, so EMAs and gradient differences are both non-trivial
    base = _tensors(99, dtype)
    return [[b + 0.5 * n for b, n in zip(base, _tensors(1000 + t, dtype))]
            for t in range(steps)]


def _run(step_fn, n_state: int, steps: int, init_state=None, dtype=torch.float64):
    params = _tensors(0, dtype)
    states = [[torch.zeros_like(p) for p in params] for _ in range(n_state)]
    if init_state is not None:
        states = init_state(params)
    for t, grads in enumerate(_grads(steps, dtype), start=1):
        g0 = [g.clone() for g in grads]
        step_fn(params, grads, states, t)
        assert all(torch.equal(a, b) for a, b in zip(grads, g0)), "gradient was written"
    return params, states


def _assert_same(a, b, rtol=1e-12, atol=1e-13):
    for x, y in zip(a, b, strict=True):
        if isinstance(x, list):
            _assert_same(x, y, rtol, atol)
        else:
            torch.testing.assert_close(x, y, rtol=rtol, atol=atol)


def test_blocks_cover_every_element_once_in_order():
    ts = [torch.arange(t.numel(), dtype=torch.float64) + 1000 * i
          for i, t in enumerate(_tensors(0))]
    seen = [[] for _ in ts]
    for block in blocks((ts,), BLOCK):
        assert sum(v.numel() for v in block.views[0]) <= BLOCK
        for i, v in zip(block.index, block.views[0]):
            seen[i].append(v)
    for t, parts in zip(ts, seen):
        assert torch.equal(torch.cat(parts), t)
    assert not can_block([torch.zeros(4, 3).T])  # non-contiguous: reference path
    assert not can_block([torch.zeros(3, dtype=torch.float16)])


@pytest.mark.parametrize("wd,maximize,warmup", [(0.0, False, None), (0.1, True, 40)])
def test_ademamix_fast_path_equals_reference(wd, maximize, warmup):
    hyper = dict(lr=1e-2, beta1=0.9, beta2=0.999, beta3=0.9999, alpha=5.0,
                 alpha_warmup=warmup, beta3_warmup=warmup, eps=1e-8, weight_decay=wd,
                 maximize=maximize)
    ref = _run(lambda p, g, s, t: _single_tensor_ademamix(p, g, *s, [t] * len(p), **hyper),
               3, 200)
    fast = _run(lambda p, g, s, t: _blocked_ademamix(p, g, *s, t, block_elements=BLOCK,
                                                     **hyper), 3, 200)
    _assert_same(fast, ref)


@pytest.mark.parametrize("wd,maximize", [(0.0, False), (0.05, True)])
def test_diffgrad_fast_path_equals_reference(wd, maximize):
    hyper = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=wd,
                 maximize=maximize)
    ref = _run(lambda p, g, s, t: _single_tensor_diffgrad(p, g, *s, [t] * len(p), **hyper),
               3, 200)
    fast = _run(lambda p, g, s, t: _blocked_diffgrad(p, g, *s, t, block_elements=BLOCK,
                                                     **hyper), 3, 200)
    _assert_same(fast, ref)


@pytest.mark.parametrize("maximize", [False, True])
def test_gravity_fast_path_equals_reference(maximize):
    hyper = dict(lr=0.1, beta=0.9, maximize=maximize)
    v0 = lambda ps: [[0.1 * x for x in _tensors(7)]]  # noqa: E731  (non-zero start velocity)
    ref = _run(lambda p, g, s, t: _single_tensor_gravity(p, g, *s, [t] * len(p), **hyper),
               1, 200, init_state=v0)
    fast = _run(lambda p, g, s, t: _blocked_gravity(p, g, *s, t, block_elements=BLOCK,
                                                    **hyper), 1, 200, init_state=v0)
    _assert_same(fast, ref)


def test_fast_path_float32_close_to_reference():
    hyper = dict(lr=1e-3, beta1=0.9, beta2=0.999, beta3=0.9999, alpha=5.0,
                 alpha_warmup=None, beta3_warmup=None, eps=1e-8, weight_decay=0.01,
                 maximize=False)
    ref = _run(lambda p, g, s, t: _single_tensor_ademamix(p, g, *s, [t] * len(p), **hyper),
               3, 50, dtype=torch.float32)
    fast = _run(lambda p, g, s, t: _blocked_ademamix(p, g, *s, t, block_elements=BLOCK,
                                                     **hyper), 3, 50, dtype=torch.float32)
    _assert_same(fast[0], ref[0], rtol=1e-5, atol=1e-6)


def test_dispatch_falls_back_for_mixed_steps_and_non_contiguous():
    hyper = dict(lr=1e-2, beta1=0.9, beta2=0.999, beta3=0.9999, alpha=5.0,
                 alpha_warmup=None, beta3_warmup=None, eps=1e-8, weight_decay=0.0,
                 maximize=False)
    for steps, transpose in (([3, 4], False), ([3, 3], True)):
        ps = [torch.randn(4, 3, dtype=torch.float64), torch.randn(5, dtype=torch.float64)]
        if transpose:
            ps[0] = ps[0].T
        gs = [torch.randn_like(p) for p in ps]
        states = [[torch.rand_like(p) for p in ps] for _ in range(3)]
        copies = [p.clone() for p in ps], [[s.clone() for s in st] for st in states]
        ademamix(ps, gs, *states, steps, **hyper)
        _single_tensor_ademamix(copies[0], gs, *copies[1], steps, **hyper)
        _assert_same([ps, states], [copies[0], copies[1]])


@pytest.mark.parametrize("wd", [0.0, 1.0])
def test_grokfast_adamw_fused_hook_equals_chain_update(wd):
    """``apply_`` (filter into scratch + fused AdamW) against the chain's own ``update``
    followed by the adapter's step, on the same states."""
    tx = OPTIMIZERS.get("grokfast-adamw")([torch.zeros(1)], weight_decay=wd).transform
    assert tx.apply_ is not None
    fused = _fused_grokfast_ema_adamw(0.98, 2.0, 0.9, 0.98, 1e-8, wd, block_elements=BLOCK)
    lr = 1e-2
    ref_p, fast_p = _tensors(0), _tensors(0)
    ref_s, fast_s = tx.init(ref_p), tx.init(fast_p)
    for grads in _grads(150):
        grads = [*grads[:2], None, *grads[3:]]  # one parameter without a gradient
        upd, ref_s = tx.update(list(grads), ref_s, ref_p)
        for p, u in zip(ref_p, upd):
            if u is not None:
                p.add_(u, alpha=-lr)
        fast_s = fused(list(grads), fast_s, fast_p, lr)
        assert fast_s is not None
    _assert_same(fast_p, ref_p)
    for a, b in zip(tree_leaves(fast_s), tree_leaves(ref_s), strict=True):
        if isinstance(a, torch.Tensor):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
        else:
            assert a == b
