r"""Grokfast optimizers: a Grokfast gradient filter in front of AdamW (papers.md row 101)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.transforms import (
    TransformOptimizer,
    add_decayed_weights,
    chain,
    grokfast_ema,
    grokfast_ma,
    scale_by_adam,
)


def grokfast_adamw(params: Iterable[Any], lr: float = 1e-3, alpha: float = 0.98,
                   lamb: float = 2.0, betas: tuple[float, float] = (0.9, 0.98),
                   eps: float = 1e-8, weight_decay: float = 1.0, *,
                   maximize: bool = False) -> TransformOptimizer:
    r"""Grokfast-EMA + AdamW: ``chain(grokfast_ema(alpha, lamb), scale_by_adam(betas, eps),
    add_decayed_weights(weight_decay))`` under :class:`TransformOptimizer`.

    "Grokfast: Accelerated Grokking by Amplifying Slow Gradients" (Lee, Kang, Lee & Yoo, 2024;
    papers.md row 101): :math:`\mu_t = \alpha\mu_{t-1} + (1-\alpha)g_t`, :math:`\hat g_t = g_t +
    \lambda\mu_t`, then AdamW on :math:`\hat g`. Defaults are the paper's modular-arithmetic
    setting (alpha 0.98, lamb 2, AdamW betas (0.9, 0.98), weight decay 1, lr 1e-3)."""
    tx = chain(grokfast_ema(alpha, lamb), scale_by_adam(betas[0], betas[1], eps),
               add_decayed_weights(weight_decay))
    return TransformOptimizer(params, tx, lr=lr, maximize=maximize)


def grokfast_ma_adamw(params: Iterable[Any], lr: float = 1e-3, window_size: int = 100,
                      lamb: float = 5.0, warmup: bool = True,
                      betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-8,
                      weight_decay: float = 1.0, *, maximize: bool = False
                      ) -> TransformOptimizer:
    """Grokfast-MA + AdamW: the windowed-mean filter (window 100, lamb 5 in the paper) in front
    of AdamW; see :func:`grokfast_adamw`."""
    tx = chain(grokfast_ma(window_size, lamb, warmup=warmup),
               scale_by_adam(betas[0], betas[1], eps), add_decayed_weights(weight_decay))
    return TransformOptimizer(params, tx, lr=lr, maximize=maximize)


OPTIMIZERS.register("grokfast_adamw", grokfast_adamw, papers=(101,),
                    summary="Grokfast EMA filter (g + lamb EMA(g)) in front of AdamW")
OPTIMIZERS.register("grokfast_ma_adamw", grokfast_ma_adamw, papers=(101,),
                    summary="Grokfast-MA filter (g + lamb windowed mean) in front of AdamW")
