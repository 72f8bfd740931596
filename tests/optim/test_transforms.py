"""Gradient transforms and the TransformOptimizer adapter against torch and pytorch_optimizer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.optim import OPTIMIZERS
from trainlab.optim.transforms import (
    TransformOptimizer,
    add_decayed_weights,
    chain,
    clip_by_global_norm,
    clip_by_value,
    ema,
    grokfast_ema,
    grokfast_ma,
    masked,
    scale_by_adam,
    tree_leaves,
    tree_replace_leaves,
)

from ._problems import assert_close_lists, initial_params, loss_fn, run

po = pytest.importorskip("pytorch_optimizer")


def test_adamw_chain_equals_torch_adamw():
    tx = lambda: chain(scale_by_adam(0.9, 0.999, 1e-8), add_decayed_weights(0.05))  # noqa: E731
    ours, _ = run(lambda p: TransformOptimizer(p, tx(), lr=1e-2), 200)
    ref, _ = run(lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.05), 200)
    assert_close_lists(ours, ref, rtol=1e-12, atol=1e-13)


def test_clip_matches_torch_clip_grad_norm():
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(3, 4, generator=g, dtype=torch.float64) * 5,
             torch.randn(7, generator=g, dtype=torch.float64)]
    out, _ = clip_by_global_norm(2.0).update(list(grads), (), grads)
    copies = [nn.Parameter(torch.zeros_like(x)) for x in grads]
    for c, x in zip(copies, grads):
        c.grad = x.clone()
    torch.nn.utils.clip_grad_norm_(copies, 2.0)
    total = torch.linalg.vector_norm(torch.cat([o.flatten() for o in out]))
    assert float(total) == pytest.approx(2.0, rel=1e-12)
    for o, c in zip(out, copies):  # torch divides by (norm + 1e-6)
        torch.testing.assert_close(o, c.grad, rtol=1e-6, atol=0)
    small = [x / 100 for x in grads]
    same, _ = clip_by_global_norm(2.0).update(list(small), (), small)
    for a, b in zip(same, small):
        assert torch.equal(a, b)
    v, _ = clip_by_value(0.5).update(list(grads), (), grads)
    assert max(float(x.abs().max()) for x in v) <= 0.5


class _Holder(nn.Module):
    def __init__(self, params):
        super().__init__()
        self.ps = nn.ParameterList([nn.Parameter(p) for p in params])


def _po_filtered_adamw(filter_fn, steps, **adamw):
    m = _Holder(initial_params())
    ps = list(m.ps)
    opt = torch.optim.AdamW(ps, **adamw)
    state = None
    for t in range(steps):
        opt.zero_grad()
        loss_fn(ps, t).backward()
        state = filter_fn(m, state)
        opt.step()
    return ps


def test_grokfast_ema_adamw_matches_pytorch_optimizer_filter():
    from pytorch_optimizer.optimizer.grokfast import gradfilter_ema

    ref = _po_filtered_adamw(lambda m, s: gradfilter_ema(m, s, alpha=0.9, lamb=2.0), 200,
                             lr=1e-2, betas=(0.9, 0.98), weight_decay=0.1)
    ours, _ = run(lambda p: OPTIMIZERS.get("grokfast-adamw")(
        p, lr=1e-2, alpha=0.9, lamb=2.0, betas=(0.9, 0.98), weight_decay=0.1), 200)
    assert_close_lists(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("warmup", [True, False])
def test_grokfast_ma_adamw_matches_pytorch_optimizer_filter(warmup):
    from pytorch_optimizer.optimizer.grokfast import gradfilter_ma

    ref = _po_filtered_adamw(
        lambda m, s: gradfilter_ma(m, s, window_size=7, lamb=5.0, warmup=warmup), 200,
        lr=1e-2, betas=(0.9, 0.98), weight_decay=0.1)
    ours, _ = run(lambda p: OPTIMIZERS.get("grokfast-ma-adamw")(
        p, lr=1e-2, window_size=7, lamb=5.0, warmup=warmup, betas=(0.9, 0.98),
        weight_decay=0.1), 200)
    assert_close_lists(ours, ref, rtol=1e-9, atol=1e-11)


def test_grokfast_lamb_zero_is_identity_and_ema_debias():
    g = [torch.tensor([1.0, -2.0], dtype=torch.float64)]
    for tx in (grokfast_ema(lamb=0.0), grokfast_ma(5, lamb=0.0, warmup=False)):
        out, _ = tx.update(list(g), tx.init(g), g)
        assert torch.equal(out[0], g[0])
    tx = ema(0.9, debias=True)
    s = tx.init(g)
    out, s = tx.update(list(g), s, g)
    torch.testing.assert_close(out[0], g[0])  # debiased EMA of a constant is the constant


def test_adapter_leaves_grad_untouched_and_none_grads_skip():
    a = torch.randn(3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    b0 = b.detach().clone()
    opt = TransformOptimizer([a, b], chain(clip_by_global_norm(0.1), scale_by_adam()),
                             lr=0.1, maximize=True)
    a.grad = torch.ones(3, dtype=torch.float64)
    g0 = a.grad.clone()
    opt.step()
    assert torch.equal(a.grad, g0) and torch.equal(b.detach(), b0)


def test_masked_applies_inner_only_where_true():
    ps = [torch.ones(2, dtype=torch.float64), torch.ones(3, dtype=torch.float64)]
    tx = masked(add_decayed_weights(0.5), lambda params: [p.numel() == 2 for p in params])
    out, _ = tx.update([torch.zeros(2, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)],
                       tx.init(ps), ps)
    assert torch.equal(out[0], torch.full((2,), 0.5, dtype=torch.float64))
    assert torch.equal(out[1], torch.zeros(3, dtype=torch.float64))


def test_tree_round_trip_and_mismatch_errors():
    tx = chain(scale_by_adam(), grokfast_ma(3))
    ps = initial_params()
    state = tx.init(ps)
    leaves = tree_leaves(state)
    back = tree_replace_leaves(tx.init(ps), leaves)
    for x, y in zip(tree_leaves(back), leaves, strict=True):
        if isinstance(y, torch.Tensor):
            assert torch.equal(x, y) and x.data_ptr() != y.data_ptr()  # copied, not aliased
        else:
            assert x == y
    with pytest.raises(ValueError, match="fewer"):
        tree_replace_leaves(state, leaves[:-1])
    with pytest.raises(ValueError, match="more"):
        tree_replace_leaves(state, [*leaves, 1])


@pytest.mark.parametrize("name", ["grokfast-adamw", "grokfast-ma-adamw", "clipped-sgd"])
def test_adapter_resume_equals_uninterrupted(name):
    make = lambda p: OPTIMIZERS.get(name)(p, lr=1e-2)  # noqa: E731
    full, _ = run(make, 120)
    half, opt = run(make, 60)
    sd = opt.state_dict()
    ps = [p.detach().clone().requires_grad_(True) for p in half]
    opt2 = make(ps)
    opt2.load_state_dict(sd)
    cont, _ = run(make, 60, params=ps, start=60, opt=opt2)
    assert_close_lists(cont, full, rtol=1e-12, atol=1e-14)


def test_clipped_sgd_equals_torch_sgd_after_clip_grad_norm():
    """clipped-sgd over 150 steps against torch.optim.SGD fed gradients clipped by
    torch.nn.utils.clip_grad_norm_ (clipping active in the early steps, where the norm is ~6,
    and idle later); torch divides by norm + 1e-6, hence rtol 1e-6, not bitwise."""
    def torch_clipped(params):
        sgd = torch.optim.SGD(params, lr=0.05)

        class Clipped:  # clip, then torch's SGD step
            def zero_grad(self):
                sgd.zero_grad()

            def step(self):
                torch.nn.utils.clip_grad_norm_(params, 1.5)
                sgd.step()

        return Clipped()

    g0 = [p.detach().clone().requires_grad_(True) for p in initial_params()]
    loss_fn(g0, 0).backward()
    assert torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in g0])) > 3.0
    ours, _ = run(lambda p: OPTIMIZERS.get("clipped-sgd")(p, lr=0.05, max_norm=1.5), 150)
    ref, _ = run(torch_clipped, 150)
    assert_close_lists(ours, ref, rtol=1e-6, atol=1e-8)
