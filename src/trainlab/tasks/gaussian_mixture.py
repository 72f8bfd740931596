"""Gaussian-mixture classification: a small, fast, learnable problem with as many classes as
wanted (the synthetic stand-in for MNIST/CIFAR in the phenomena of rows 8, 28, 39 and 104)."""

from __future__ import annotations

import torch

from trainlab.errors import check_range
from trainlab.tasks._task import TASKS, Task


def gaussian_mixture(n: int, dim: int, classes: int, *, spread: float = 1.0,
                     generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw ``n`` labelled points of a mixture of ``classes`` unit-variance Gaussians.

    The class means are drawn once per call, :math:`\mu_c \sim N(0, \text{spread}^2 I_{dim})`;
    labels are balanced (``arange(n) % classes``, shuffled) and
    :math:`x_i \sim N(\mu_{y_i}, I_{dim})`. A larger ``spread`` separates the classes more
    (the Bayes error falls as the means move apart).

    Args:
        n: number of points, >= 1.
        dim: input dimension, >= 1.
        classes: number of classes, >= 2.
        spread: standard deviation of the class means, > 0.
        generator: the source of randomness (the global RNG if None).

    Returns:
        float32 inputs ``(n, dim)`` and int64 labels ``(n,)``.

    Example:
        >>> x, y = gaussian_mixture(6, 3, 2, generator=torch.Generator().manual_seed(0))
        >>> tuple(x.shape), sorted(y.tolist())
        ((6, 3), [0, 0, 0, 1, 1, 1])
    """
    x, labels, _ = _draw(n, dim, classes, spread, generator)
    return x, labels


def _draw(n: int, dim: int, classes: int, spread: float, generator: torch.Generator | None
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`gaussian_mixture` that also returns the class means ``(classes, dim)``."""
    check_range("n", n, low=1, owner="gaussian_mixture")
    check_range("dim", dim, low=1, owner="gaussian_mixture")
    check_range("classes", classes, low=2, owner="gaussian_mixture")
    check_range("spread", spread, low=0.0, low_open=True, owner="gaussian_mixture")
    means = spread * torch.randn(classes, dim, generator=generator)
    labels = torch.arange(n) % classes
    labels = labels[torch.randperm(n, generator=generator)]
    x = means[labels] + torch.randn(n, dim, generator=generator)
    return x, labels, means


def gaussian_mixture_task(dim: int = 20, classes: int = 10, spread: float = 1.0,
                          n_train: int = 1000, n_test: int = 1000, data_seed: int = 0) -> Task:
    """The ``gaussian-mixture`` task: ``n_train + n_test`` points of one mixture
    (:func:`gaussian_mixture`, generator seeded with ``data_seed``), the first ``n_train``
    for training and the rest for testing. ``info["means"]`` holds the class means.

    Deviations from the papers: a scale-down: a synthetic Gaussian mixture stands in for the image
    datasets of rows 8, 28, 39 and 104 (as stated above); the defaults (dimension 20, 10 classes,
    1000 training and 1000 test points) are this library's.
    """
    check_range("n_train", n_train, low=1, owner="gaussian_mixture_task")
    check_range("n_test", n_test, low=1, owner="gaussian_mixture_task")
    g = torch.Generator().manual_seed(data_seed)
    x, y, means = _draw(n_train + n_test, dim, classes, spread, g)
    return Task("gaussian-mixture", "classification", x[:n_train], y[:n_train], x[n_train:],
                y[n_train:], num_outputs=classes, default_model="mlp",
                info={"spread": spread, "means": means})


TASKS.register("gaussian-mixture", gaussian_mixture_task, papers=(8, 28, 39, 104),
               summary="classes of unit-variance Gaussians with random means (dim, spread)")
