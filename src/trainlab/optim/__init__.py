"""Optimizers (drop-in ``torch.optim.Optimizer`` classes), schedules and gradient transforms."""

from trainlab.optim import torch_builtin  # noqa: F401  (registers sgd, adam, adamw)
from trainlab.optim._registry import OPTIMIZERS, build_optimizer
from trainlab.optim.schedules import SCHEDULES, ScheduleLR, build_schedule

__all__ = ["OPTIMIZERS", "SCHEDULES", "ScheduleLR", "build_optimizer", "build_schedule"]
from trainlab.optim import gam, gradient_regularization, sam  # noqa: F401,E402  (issue 6)
