"""Gaussian-mixture classification data for the phenomena that need a small, fast,
learnable classification problem.

Minimal piece kept here until ``trainlab.tasks`` has a mixture task (then it should become a
registered task and the phenomena should call ``build_task``).
"""

from __future__ import annotations

import torch


def gaussian_mixture(n: int, dim: int, classes: int, *, spread: float = 1.0,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points: class ``c`` ~ N(mu_c, I) with means mu_c ~ N(0, spread^2 I) drawn once
    per call; labels balanced. Returns float32 inputs ``(n, dim)`` and int64 labels."""
    means = spread * torch.randn(classes, dim, generator=generator)
    labels = torch.arange(n) % classes
    labels = labels[torch.randperm(n, generator=generator)]
    x = means[labels] + torch.randn(n, dim, generator=generator)
    return x, labels


def split(x: torch.Tensor, y: torch.Tensor, n_train: int
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``n_train`` points for training, the rest for testing."""
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]
