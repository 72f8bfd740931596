r"""Grokfast optimizers: a Grokfast gradient filter in front of AdamW (papers.md row 101)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from trainlab.optim._chunked import BLOCK_ELEMENTS, blocks, can_block, scratch_buffer, scratch_views
from trainlab.optim._compiled import CompiledUpdate, can_fuse, lerp_
from trainlab.optim._fused_adam import adam_step_
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.transforms import (
    ChainState,
    TransformOptimizer,
    add_decayed_weights,
    chain,
    grokfast_ema,
    grokfast_ma,
    scale_by_adam,
)
from trainlab.optim.transforms._base import Params, Updates
from trainlab.optim.transforms.filters import EmaState
from trainlab.optim.transforms.scaling import ScaleByAdamState


def _grokfast_adamw_kernel(p: torch.Tensor, g: torch.Tensor, mu: torch.Tensor,
                           m: torch.Tensor, v: torch.Tensor, s: torch.Tensor) -> None:
    """One Grokfast-EMA + AdamW step for one tensor (after the filter's first step) with the
    step's scalars in ``s`` (1-alpha, lamb, 1-b1, b2, 1-b2, eps sqrt(bc2), lr sqrt(bc2)/bc1,
    1 - lr wd): the body compiled by ``grokfast_adamw(..., fused=True)``."""
    lerp_(mu, g, s[0])
    g_hat = g + mu * s[1]
    lerp_(m, g_hat, s[2])
    v.mul_(s[3]).add_(g_hat * g_hat * s[4])
    p.mul_(s[7]).sub_(m / (v.sqrt() + s[5]) * s[6])


_COMPILED = CompiledUpdate(_grokfast_adamw_kernel, "grokfast-adamw")


def _fused_grokfast_ema_adamw(alpha: float, lamb: float, b1: float, b2: float, eps: float,
                              weight_decay: float, block_elements: int = BLOCK_ELEMENTS,
                              compiled: bool = False
                              ) -> Callable[[Updates, ChainState, Params, float],
                                            ChainState | None]:
    r"""The ``apply_`` hook of :func:`grokfast_adamw`'s chain: per cache-sized block, the EMA
    filter in place, :math:`\hat g = g + \lambda\mu` into a reused scratch buffer (``p.grad``
    is never written), then torch's fused AdamW kernel on :math:`\hat g`. Handles dense
    contiguous float32/float64 CPU tensors whose filters have seen the same number of
    gradients; returns ``None`` (nothing touched) otherwise. With ``compiled``, every step
    after the filter's first runs :func:`_grokfast_adamw_kernel` compiled by torch.compile
    instead (any device and floating dtype)."""

    def apply_(grads: Updates, state: ChainState, params: Params, lr: float
               ) -> ChainState | None:
        ema_state, adam_state, wd_state = state.inner
        idx = [i for i, g in enumerate(grads) if g is not None]
        counts = {ema_state.count[i] for i in idx}
        lists = ([params[i] for i in idx], [grads[i] for i in idx],
                 [ema_state.ema[i] for i in idx], [adam_state.mu[i] for i in idx],
                 [adam_state.nu[i] for i in idx])
        if len(counts) != 1:
            return None
        first = counts.pop() == 0
        t = adam_state.count + 1
        if compiled and not first and can_fuse(*lists):
            bc2_sqrt = (1.0 - b2**t) ** 0.5
            _COMPILED(lists, (1.0 - alpha, lamb, 1.0 - b1, b2, 1.0 - b2, eps * bc2_sqrt,
                              lr * bc2_sqrt / (1.0 - b1**t), 1.0 - lr * weight_decay))
            return _advanced(ema_state, adam_state, wd_state, idx, t)
        if not can_block(*lists):
            return None
        buffer = scratch_buffer(lists[0], block_elements)
        for block in blocks(lists, block_elements):
            p, g, mu, m, v = block.views
            if first:  # the filter starts at the first gradient
                torch._foreach_copy_(mu, g)
            else:
                torch._foreach_lerp_(mu, g, 1.0 - alpha)
            g_hat = scratch_views(buffer, g)
            torch._foreach_copy_(g_hat, g)
            torch._foreach_add_(g_hat, mu, alpha=lamb)
            adam_step_(p, g_hat, m, v, [], float(t), lr=lr, beta1=b1, beta2=b2,
                       weight_decay=weight_decay, eps=eps, maximize=False, decoupled=True)
        return _advanced(ema_state, adam_state, wd_state, idx, t)

    return apply_


def _advanced(ema_state: EmaState, adam_state: ScaleByAdamState, wd_state: Any,
              idx: list[int], t: int) -> ChainState:
    """The chain state after a fused step on the parameters ``idx`` (buffers updated in
    place): the filter counts advanced, Adam at step ``t``."""
    count = list(ema_state.count)
    for i in idx:
        count[i] += 1
    return ChainState((EmaState(count, ema_state.ema),
                       ScaleByAdamState(t, adam_state.mu, adam_state.nu), wd_state))


def grokfast_adamw(params: Iterable[Any], lr: float = 1e-3, alpha: float = 0.98,
                   lamb: float = 2.0, betas: tuple[float, float] = (0.9, 0.98),
                   eps: float = 1e-8, weight_decay: float = 1.0, *,
                   maximize: bool = False, fused: bool = False) -> TransformOptimizer:
    r"""Grokfast-EMA + AdamW: ``chain(grokfast_ema(alpha, lamb), scale_by_adam(betas, eps),
    add_decayed_weights(weight_decay))`` under :class:`TransformOptimizer`.

    "Grokfast: Accelerated Grokking by Amplifying Slow Gradients" (Lee, Kang, Lee & Yoo, 2024;
    papers.md row 101): :math:`\mu_t = \alpha\mu_{t-1} + (1-\alpha)g_t`, :math:`\hat g_t = g_t +
    \lambda\mu_t`, then AdamW on :math:`\hat g`. Defaults are the paper's modular-arithmetic
    setting (alpha 0.98, lamb 2, AdamW betas (0.9, 0.98), weight decay 1, lr 1e-3).

    Fast path: Grokfast-EMA is a gradient filter in front of plain AdamW, so for dense
    contiguous float32/float64 CPU tensors the chain carries an ``apply_`` hook that filters
    into a reused scratch gradient and calls torch's fused AdamW kernel, block by block
    (64k elements, cache-resident). The chain's ``update`` is the reference it matches
    (float64 test to 1e-12); other inputs run the chain. ``fused=True`` runs every step after
    the first as one kernel per tensor compiled by ``torch.compile`` (see
    :mod:`trainlab.optim._compiled`; a one-time compilation).

    Deviations from the paper: the filter was checked against the authors' code
    (ironjr/grokfast ``grokfast.py``, ``gradfilter_ema``: the EMA starts at the first
    gradient, and ``lamb`` times the EMA is added to the raw gradient before the optimizer).
    Differences from the authors' script (``main.py``): it warms the learning rate up
    linearly over the first 10 updates (not part of this optimizer; use a schedule), and its
    command-line defaults (Adam, weight decay 0, alpha 0.99, lamb 5) differ from the
    defaults here, which are the setting quoted above (AdamW lr 1e-3, betas (0.9, 0.98),
    weight decay 1, alpha 0.98, lamb 2; the paper's tables were not re-read for this
    paragraph). Addition: ``maximize``.
    """
    tx = chain(grokfast_ema(alpha, lamb), scale_by_adam(betas[0], betas[1], eps),
               add_decayed_weights(weight_decay))
    tx = tx._replace(apply_=_fused_grokfast_ema_adamw(alpha, lamb, betas[0], betas[1], eps,
                                                      weight_decay, compiled=bool(fused)))
    return TransformOptimizer(params, tx, lr=lr, maximize=maximize)


def grokfast_ma_adamw(params: Iterable[Any], lr: float = 1e-3, window_size: int = 100,
                      lamb: float = 5.0, warmup: bool = True,
                      betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-8,
                      weight_decay: float = 1.0, *, maximize: bool = False
                      ) -> TransformOptimizer:
    """Grokfast-MA + AdamW: the windowed-mean filter (window 100, lamb 5 in the paper) in front
    of AdamW; see :func:`grokfast_adamw`.

    Deviations from the paper: the filter was checked against the authors' code
    (ironjr/grokfast ``gradfilter_ma``: mean of the last ``window_size`` gradients times
    ``lamb`` added to the gradient, only once the window is full with ``warmup``); the
    authors' ablation switch ``trigger`` is not implemented. The optimizer defaults are
    those of :func:`grokfast_adamw` (see its deviations).
    """
    tx = chain(grokfast_ma(window_size, lamb, warmup=warmup),
               scale_by_adam(betas[0], betas[1], eps), add_decayed_weights(weight_decay))
    return TransformOptimizer(params, tx, lr=lr, maximize=maximize)


OPTIMIZERS.register("grokfast-adamw", grokfast_adamw, papers=(101,),
                    summary="Grokfast EMA filter (g + lamb EMA(g)) in front of AdamW")
OPTIMIZERS.register("grokfast-ma-adamw", grokfast_ma_adamw, papers=(101,),
                    summary="Grokfast-MA filter (g + lamb windowed mean) in front of AdamW")
