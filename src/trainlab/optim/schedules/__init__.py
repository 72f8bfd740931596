"""Learning-rate schedules: pure ``f(step) -> multiplier`` factories and one torch adapter."""

from trainlab.optim.schedules._adapter import ScheduleLR
from trainlab.optim.schedules._schedule import (
    SCHEDULES,
    Schedule,
    build_schedule,
    constant,
    cosine,
    d2z,
    inverse_sqrt,
    join,
    linear,
    linear_warmup,
    sgdr,
    wsd,
)

__all__ = ["SCHEDULES", "Schedule", "ScheduleLR", "build_schedule", "constant", "cosine", "d2z",
           "inverse_sqrt", "join", "linear", "linear_warmup", "sgdr", "wsd"]
