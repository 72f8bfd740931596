"""The one adapter from a pure schedule to ``torch.optim.lr_scheduler.LRScheduler``."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LRScheduler

from trainlab.optim.schedules._schedule import Schedule


class ScheduleLR(LRScheduler):
    """Sets each param group's lr to ``initial_lr * schedule(step)``.

    Unlike torch's recursive schedulers, the lr at step ``t`` is a closed form of ``t`` alone,
    so an outside change of ``group["lr"]`` never drifts into later steps, and ``state_dict``
    (which holds the step) resumes at exactly the right lr.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: Schedule, last_epoch: int = -1):
        self.schedule = schedule
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        m = self.schedule(self.last_epoch)
        return [base * m for base in self.base_lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "schedule")}
