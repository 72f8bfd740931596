"""Tasks: data, a default model, a loss and metrics, built by name."""

from trainlab.tasks import mnist1d, modular_addition, sequence, teacher_linear  # noqa: F401
from trainlab.tasks._task import TASKS, Task, build_task

__all__ = ["TASKS", "Task", "build_task"]
