"""Learning-rate schedules: pure ``f(step) -> multiplier`` factories and one torch adapter."""

from trainlab.optim.schedules._adapter import ScheduleLR
from trainlab.optim.schedules._schedule import (
    SCHEDULES,
    Schedule,
    build_schedule,
    constant,
    cosine,
    d2z,
    join,
    linear_warmup,
    sgdr,
)

__all__ = ["SCHEDULES", "Schedule", "ScheduleLR", "build_schedule", "constant", "cosine", "d2z",
           "join", "linear_warmup", "sgdr"]
