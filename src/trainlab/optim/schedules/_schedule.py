"""Learning-rate schedules as validated factories of pure functions ``f(step) -> multiplier``.

A schedule returns a multiplier of the peak learning rate, so one schedule serves every param
group (each group's lr is its own initial lr times ``f(step)``). Closed forms only: the value at
step ``t`` never depends on what was set before, so resuming means restoring ``t``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.registry import Registry

Schedule = Callable[[int], float]

SCHEDULES: Registry[Callable[..., Schedule]] = Registry("schedule")


def _check_steps(total_steps: int, warmup: float, owner: str) -> int:
    """Validate and return the warmup length in steps. A ``warmup`` in (0, 1) is a fraction
    of ``total_steps`` (``0.05`` = the first 5% of the run)."""
    check_range("total_steps", total_steps, low=1, owner=owner)
    if 0 < warmup < 1:
        warmup = int(round(warmup * total_steps))
    check_range("warmup", warmup, low=0, high=total_steps - 1 if total_steps > 1 else 0,
                owner=owner)
    if warmup != int(warmup):
        raise ConfigError(f"The 'warmup' parameter of {owner} must be a whole number of steps "
                          f"or a fraction in (0, 1). Got {warmup!r} instead.")
    return int(warmup)


def constant(total_steps: int = 1, *, value: float = 1.0) -> Schedule:
    """f(t) = value."""
    check_range("value", value, low=0.0, owner="constant")
    return lambda step: value


def linear_warmup(total_steps: int, *, warmup: float = 0, start: float = 0.0) -> Schedule:
    """Linear ramp from ``start`` to 1 over ``warmup`` steps, then 1."""
    warmup = _check_steps(total_steps, warmup, "linear_warmup")

    def f(step: int) -> float:
        if step < warmup:
            return start + (1.0 - start) * step / warmup
        return 1.0

    return f


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Piecewise schedule: ``schedules[i]`` (called with the step relative to its start) runs
    from ``boundaries[i-1]`` to ``boundaries[i]``."""
    if len(schedules) != len(boundaries) + 1:
        raise ConfigError(f"join needs len(boundaries) == len(schedules) - 1, got "
                          f"{len(boundaries)} boundaries for {len(schedules)} schedules")
    if list(boundaries) != sorted(boundaries):
        raise ConfigError(f"join boundaries must be increasing, got {list(boundaries)}")
    starts = [0, *boundaries]

    def f(step: int) -> float:
        i = sum(step >= b for b in boundaries)
        return schedules[i](step - starts[i])

    return f


def cosine(total_steps: int, *, warmup: float = 0, floor: float = 0.0) -> Schedule:
    r"""Linear warmup to 1, then half-cosine decay to ``floor`` at ``total_steps``:
    :math:`f = \mathrm{floor} + (1-\mathrm{floor})\tfrac12(1+\cos(\pi\,\tau))`,
    :math:`\tau = (t-w)/(T-w)` clipped to [0, 1]. ``floor=0.1`` is the common "10x cosine"."""
    warmup = _check_steps(total_steps, warmup, "cosine")
    check_range("floor", floor, low=0.0, high=1.0, owner="cosine")
    span = total_steps - warmup

    def decay(step: int) -> float:
        tau = min(step, span) / span
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * tau))

    return join([linear_warmup(warmup + 1, warmup=warmup), decay], [warmup]) if warmup else decay


def d2z(total_steps: int, *, warmup: float = 0) -> Schedule:
    r"""Linear warmup then linear decay to zero, D2Z (papers.md row 14).

    "Straight to Zero: Why Linearly Decaying the Learning Rate to Zero Works Best for LLMs"
    (Bergsma et al., 2025): :math:`f(t) = t/w` for :math:`t < w`, then
    :math:`f(t) = (T - t)/(T - w)`, reaching 0 at :math:`t = T` (and staying 0 after).

    Deviations from the paper: ``warmup`` defaults to 0 steps (pass the run's warmup; the paper's
    warmup lengths were not re-read for this paragraph); the schedule is a multiplier of each
    group's peak learning rate.
    """
    warmup = _check_steps(total_steps, warmup, "d2z")
    span = total_steps - warmup

    def decay(step: int) -> float:
        return max(0.0, (span - step) / span)

    return join([linear_warmup(warmup + 1, warmup=warmup), decay], [warmup]) if warmup else decay


def sgdr(total_steps: int = 1, *, t0: int = 100, t_mult: int = 1, floor: float = 0.0,
         warmup: float = 0) -> Schedule:
    r"""Cosine annealing with warm restarts, SGDR (Loshchilov & Hutter, ICLR 2017; row 39).

    Eq. (5) of the paper: :math:`\eta_t = \eta_{min} + \tfrac12(\eta_{max}-\eta_{min})
    (1+\cos(\pi T_{cur}/T_i))`, with restart periods :math:`T_i = T_0 T_{mult}^i`. Here
    :math:`\eta_{min}/\eta_{max}` = ``floor``. ``T_cur`` counts steps (the paper's per-batch
    variant); ``warmup`` prepends a linear warmup (not in the paper, default 0).

    Deviations from the paper: ``T_cur`` counts steps (the paper's per-batch variant) and the
    periods are in steps; the defaults ``t0 = 100``, ``t_mult = 1`` and ``floor = 0`` are this
    library's, not the paper's settings (given in epochs); the optional warmup is not in the paper.
    Checked: Eq. (5) as restated above.
    """
    check_range("t0", t0, low=1, owner="sgdr")
    check_range("t_mult", t_mult, low=1, owner="sgdr")
    check_range("floor", floor, low=0.0, high=1.0, owner="sgdr")

    def restarts(step: int) -> float:
        period, t = t0, step
        while t >= period:
            t -= period
            period *= t_mult
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t / period))

    warmup = _check_steps(max(total_steps, int(warmup) + 1), warmup, "sgdr")
    if warmup:
        return join([linear_warmup(warmup + 1, warmup=warmup), restarts], [warmup])
    return restarts


def _warmup_then(decay: Schedule, warmup: int) -> Schedule:
    """Linear warmup from 0 over ``warmup`` steps, then ``decay`` (called from 0)."""
    return join([linear_warmup(warmup + 1, warmup=warmup), decay], [warmup]) if warmup else decay


def linear(total_steps: int, *, warmup: int = 0, floor: float = 0.0) -> Schedule:
    r"""Linear warmup to 1, then linear decay to ``floor`` at ``total_steps`` (and ``floor``
    after): :math:`f = \mathrm{floor} + (1-\mathrm{floor})(T-t)/(T-w)`. ``floor=0`` is
    :func:`d2z`."""
    _check_steps(total_steps, warmup, "linear")
    check_range("floor", floor, low=0.0, high=1.0, owner="linear")
    span = total_steps - warmup

    def decay(step: int) -> float:
        return floor + (1.0 - floor) * max(0.0, (span - step) / span)

    return _warmup_then(decay, warmup)


def inverse_sqrt(total_steps: int = 1, *, warmup: int = 0, timescale: int | None = None
                 ) -> Schedule:
    r"""Linear warmup to 1, then :math:`f = (1 + (t-w)/\tau)^{-1/2}` ("Attention Is All You
    Need", Vaswani et al., 2017, normalised to 1 at the end of warmup). The default timescale
    :math:`\tau = w` (or 1 without warmup) gives the Transformer's :math:`\sqrt{w/t}`.
    ``total_steps`` is accepted for a uniform signature and does not change the curve."""
    check_range("warmup", warmup, low=0, owner="inverse-sqrt")
    tau = timescale if timescale is not None else max(warmup, 1)
    check_range("timescale", tau, low=0, low_open=True, owner="inverse-sqrt")

    def decay(step: int) -> float:
        return 1.0 / math.sqrt(1.0 + step / tau)

    return _warmup_then(decay, warmup)


_WSD_SHAPES = ("linear", "cosine", "1-sqrt")


def wsd(total_steps: int, *, warmup: int = 0, decay_fraction: float = 0.2, floor: float = 0.0,
        shape: str = "linear") -> Schedule:
    r"""Warmup-stable-decay: linear warmup to 1, constant 1, then a decay to ``floor`` over the
    last ``decay_fraction`` of the run (MiniCPM, Hu et al., 2024; "Scaling Laws and
    Compute-Optimal Training Beyond Fixed Training Durations", Hagele et al., 2024). With
    :math:`d = \lceil \text{decay\_fraction}\cdot T\rceil` and :math:`\tau = (t - (T-d))/d`
    the decay is ``"linear"`` :math:`1-\tau`, ``"cosine"`` :math:`\tfrac12(1+\cos\pi\tau)`
    or ``"1-sqrt"`` :math:`1-\sqrt\tau` (Hagele et al.'s best), mapped to [floor, 1]."""
    _check_steps(total_steps, warmup, "wsd")
    check_range("decay_fraction", decay_fraction, low=0.0, high=1.0, low_open=True, owner="wsd")
    check_range("floor", floor, low=0.0, high=1.0, owner="wsd")
    check_choice("shape", shape, list(_WSD_SHAPES), owner="wsd")
    decay_steps = math.ceil(decay_fraction * total_steps)
    if warmup + decay_steps > total_steps:
        raise ConfigError(f"wsd: warmup ({warmup}) + decay steps ({decay_steps}) exceed "
                          f"total_steps ({total_steps})")
    start = total_steps - decay_steps

    def f(step: int) -> float:
        if step < warmup:
            return step / warmup
        if step < start:
            return 1.0
        tau = min(1.0, (step - start) / decay_steps)
        if shape == "linear":
            d = 1.0 - tau
        elif shape == "cosine":
            d = 0.5 * (1.0 + math.cos(math.pi * tau))
        else:
            d = 1.0 - math.sqrt(tau)
        return floor + (1.0 - floor) * d

    return f


SCHEDULES.register("constant", constant, summary="constant learning rate")
SCHEDULES.register("warmup", linear_warmup, summary="linear warmup, then constant")
SCHEDULES.register("cosine", cosine, summary="linear warmup, then cosine decay to a floor")
SCHEDULES.register("d2z", d2z, papers=(14,),
                   summary="linear warmup, then linear decay to zero (Straight to Zero)")
SCHEDULES.register("sgdr", sgdr, papers=(39,),
                   summary="cosine annealing with warm restarts (T_0, T_mult)")

SCHEDULES.register("linear", linear, summary="linear warmup, then linear decay to a floor")
SCHEDULES.register("inverse-sqrt", inverse_sqrt,
                   summary="linear warmup, then 1/sqrt decay (Transformer schedule)")
SCHEDULES.register("wsd", wsd,
                   summary="warmup-stable-decay: constant then linear/cosine/1-sqrt cool-down")


def build_schedule(name: str, total_steps: int, **hyper: float) -> Schedule:
    """Look up ``name`` in the schedule registry and build it for a run of ``total_steps``."""
    factory = SCHEDULES.get(name)
    try:
        return factory(total_steps, **hyper)
    except TypeError as exc:
        raise ConfigError(f"schedule {name!r}: {exc}") from None
