"""Tasks: data, a default model, a loss and metrics, built by name."""

import trainlab.pinn.task  # noqa: F401  (registers the PDE tasks, pinn-<problem>)
from trainlab.tasks import (  # noqa: F401  (registration)
    adding,
    denoising,
    gaussian_mixture,
    mnist1d,
    modular_addition,
    sequence,
    teacher_linear,
)
from trainlab.tasks._task import TASKS, Task, build_task

__all__ = ["TASKS", "Task", "build_task"]
