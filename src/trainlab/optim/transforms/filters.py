r"""Temporal filters of the gradient: EMA, and Grokfast's slow-gradient amplifiers.

"Grokfast: Accelerated Grokking by Amplifying Slow Gradients" (Lee et al., 2024; papers.md
row 101) treats the sequence of gradients of each parameter as a signal and adds ``lamb``
times its low-pass-filtered version: :math:`\hat g_t = g_t + \lambda\,\bar g_t`. Two filters:
a windowed mean (Algorithm 1, "Grokfast-MA") and an exponential moving average (Algorithm 2,
"Grokfast").
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

from trainlab.errors import check_choice, check_range
from trainlab.optim.transforms._base import Params, Transform, Updates


class EmaState(NamedTuple):
    count: list[int]
    ema: list[torch.Tensor]


def ema(decay: float = 0.9, *, debias: bool = False) -> Transform:
    r"""Replace the updates by their exponential moving average,
    :math:`\mu_t = \beta\mu_{t-1} + (1-\beta) g_t` (from :math:`\mu_0 = 0`), divided by
    :math:`1-\beta^t` when ``debias``."""
    check_range("decay", decay, low=0.0, high=1.0, high_open=True, owner="ema")

    def init(params: Params) -> EmaState:
        return EmaState([0] * len(params), [torch.zeros_like(p) for p in params])

    def update(updates: Updates, state: EmaState, params: Params
               ) -> tuple[Updates, EmaState]:
        out, counts, mus = [], [], []
        for g, n, mu in zip(updates, state.count, state.ema):
            if g is not None:
                n, mu = n + 1, mu.lerp_(g, 1.0 - decay)
            counts.append(n)
            mus.append(mu)
            out.append(None if g is None else (mu / (1.0 - decay**n) if debias else mu))
        return out, EmaState(counts, mus)

    return Transform(init, update)


def grokfast_ema(alpha: float = 0.98, lamb: float = 2.0) -> Transform:
    r"""Grokfast (EMA filter): :math:`\mu_t = \alpha\mu_{t-1} + (1-\alpha) g_t`,
    :math:`\hat g_t = g_t + \lambda\mu_t`, with :math:`\mu_1 = g_1` (the authors' code starts the
    average at the first gradient). Paper defaults :math:`\alpha = 0.98`, :math:`\lambda = 2`.
    ``lamb=0`` returns the gradients unchanged.

    Deviations from the paper: none known: the filter was checked against the authors'
    ``gradfilter_ema`` (ironjr/grokfast: the average starts at the first gradient; ``lamb`` times it
    is added to the raw gradient). Defaults as stated above.
    """
    check_range("alpha", alpha, low=0.0, high=1.0, high_open=True, owner="grokfast_ema")
    check_range("lamb", lamb, low=0.0, owner="grokfast_ema")

    def init(params: Params) -> EmaState:
        return EmaState([0] * len(params), [torch.zeros_like(p) for p in params])

    def update(updates: Updates, state: EmaState, params: Params
               ) -> tuple[Updates, EmaState]:
        out, counts, mus = [], [], []
        for g, n, mu in zip(updates, state.count, state.ema):
            if g is not None:
                mu = mu.copy_(g) if n == 0 else mu.lerp_(g, 1.0 - alpha)
                n += 1
            counts.append(n)
            mus.append(mu)
            out.append(None if g is None else torch.add(g, mu, alpha=lamb))
        return out, EmaState(counts, mus)

    return Transform(init, update)


class WindowState(NamedTuple):
    count: list[int]
    window: list[torch.Tensor]
    total: list[torch.Tensor]


def grokfast_ma(window_size: int = 100, lamb: float = 5.0, *, warmup: bool = True,
                filter_type: Literal["mean", "sum"] = "mean") -> Transform:
    r"""Grokfast-MA (windowed moving-average filter): keep the last ``window_size`` gradients
    and return :math:`\hat g_t = g_t + \lambda\,\mathrm{avg}(g_{t-w+1..t})` (``"sum"`` adds the
    sum instead of the mean). With ``warmup`` the filter applies only once the window is full
    (before, the gradient passes unchanged), as in the paper. Defaults :math:`w = 100`,
    :math:`\lambda = 5` (paper's Algorithm 1 / modular-arithmetic setting).

    The window is a ring buffer of shape ``(window_size, *p.shape)`` per parameter (memory:
    ``window_size`` copies of the model) with a running sum, recomputed exactly each time the
    ring wraps; both are donated state, written in place.

    Deviations from the paper: checked against the authors' ``gradfilter_ma`` (ironjr/grokfast:
    mean, or sum, of the last ``window_size`` gradients times ``lamb`` added to the gradient, only
    once the window is full when ``warmup``); that function's ablation switch ``trigger`` is not
    implemented.
    """
    check_range("window_size", window_size, low=1, owner="grokfast_ma")
    check_range("lamb", lamb, low=0.0, owner="grokfast_ma")
    check_choice("filter_type", filter_type, ("mean", "sum"), owner="grokfast_ma")

    def init(params: Params) -> WindowState:
        return WindowState([0] * len(params),
                           [torch.zeros((window_size, *p.shape), dtype=p.dtype, device=p.device)
                            for p in params],
                           [torch.zeros_like(p) for p in params])

    def update(updates: Updates, state: WindowState, params: Params
               ) -> tuple[Updates, WindowState]:
        out, counts = [], []
        for g, n, buf, total in zip(updates, state.count, state.window, state.total):
            if g is None:
                out.append(None)
                counts.append(n)
                continue
            slot = n % window_size
            total.sub_(buf[slot]).add_(g)
            buf[slot].copy_(g)
            n += 1
            if slot == window_size - 1:  # ring wrapped: drop accumulated rounding
                torch.sum(buf, 0, out=total)
            counts.append(n)
            filled = min(n, window_size)
            if warmup and filled < window_size:
                out.append(g)
            else:
                avg = total if filter_type == "sum" else total / filled
                out.append(torch.add(g, avg, alpha=lamb))
        return out, WindowState(counts, state.window, state.total)

    return Transform(init, update)
