"""Diffusion training as a task: denoising score matching as the regression (x_t, t) -> eps
(:mod:`trainlab.diffusion.dsm`), so the Trainer, probes, store and reports work unchanged.

``diffusion-mixture`` draws its data from a Gaussian mixture with an exact score
(a 2-D ring, or 1-D signals); its *test* labels are the exact
:math:`\\varepsilon^*(x_t, t)` instead of the drawn noise, so the reported test loss is the
exact score error :math:`\\tfrac12 E\\|\\varepsilon_\\theta - \\varepsilon^*\\|^2 =
\\tfrac12 E[(1-\\bar\\alpha_t)\\|s_\\theta - \\nabla\\log p_t\\|^2]` (Han, Razaviyayn & Xu,
"Neural Network-Based Score Estimation in Diffusion Models", 2024, papers.md row 85: DSM as
regression with noisy labels). ``diffusion-digits`` uses scikit-learn's 8x8 digits (no exact
score; test labels are drawn noise).
"""

from __future__ import annotations

import torch

from trainlab.diffusion.digits import load_digits_tensor
from trainlab.diffusion.dsm import noised_regression_data
from trainlab.diffusion.mixtures import ring_mixture, signal_mixture
from trainlab.diffusion.schedules import vp_schedule
from trainlab.errors import check_choice, check_range
from trainlab.tasks._task import TASKS, Task


def diffusion_mixture_task(data: str = "ring", n_train: int = 512, n_test: int = 2048,
                           draws: int = 1, num_steps: int = 1000, data_seed: int = 0) -> Task:
    """DSM on ``n_train`` points of ``ring_mixture()`` (``data="ring"``, 2-D) or
    ``signal_mixture()`` (``data="signals"``, length 32), ``draws`` noisings each, T =
    ``num_steps`` (linear VP schedule); test labels are the exact eps* (module docstring).
    ``info`` holds the mixture and the schedule.

    Deviations from the paper: the data are low-dimensional Gaussian mixtures with an exact score (a
    2-D ring or 1-D signals), a linear VP schedule with ``num_steps = 1000`` and exact test labels;
    these are this library's choices for a small, checkable setting, not the paper's experimental
    setup (not re-read for this paragraph).
    """
    check_choice("data", data, ("ring", "signals"), owner="diffusion-mixture")
    check_range("n_train", n_train, low=1, owner="diffusion-mixture")
    check_range("n_test", n_test, low=1, owner="diffusion-mixture")
    mix = ring_mixture() if data == "ring" else signal_mixture()
    sched = vp_schedule(num_steps)
    g = torch.Generator().manual_seed(data_seed)
    x_tr, y_tr, _ = noised_regression_data(mix.sample(n_train, generator=g), sched, draws,
                                           generator=g)
    x_te, _, t_te = noised_regression_data(mix.sample(n_test, generator=g), sched, 1,
                                           generator=g)
    d = mix.dim
    y_te = mix.eps_star(x_te[:, :d], sched.abar(t_te))
    return Task(f"diffusion-mixture-{data}", "regression", x_tr.float(), y_tr.float(),
                x_te.float(), y_te.float(), num_outputs=d, default_model="mlp",
                info={"mixture": mix, "schedule": sched})


def diffusion_digits_task(n_test: int = 297, draws: int = 1, num_steps: int = 1000,
                          data_seed: int = 0) -> Task:
    """DSM on scikit-learn's 8x8 digits in [-1, 1] (flattened to 64): the last ``n_test``
    images are the test set; ``draws`` noisings per image, T = ``num_steps``."""
    check_range("n_test", n_test, low=1, high=1796, owner="diffusion-digits")
    images, labels = load_digits_tensor()
    sched = vp_schedule(num_steps)
    g = torch.Generator().manual_seed(data_seed)
    perm = torch.randperm(len(images), generator=g)
    images, labels = images[perm], labels[perm]
    x_tr, y_tr, _ = noised_regression_data(images[:-n_test], sched, draws, generator=g)
    x_te, y_te, _ = noised_regression_data(images[-n_test:], sched, 1, generator=g)
    return Task("diffusion-digits", "regression", x_tr.float(), y_tr.float(), x_te.float(),
                y_te.float(), num_outputs=64, default_model="mlp",
                info={"schedule": sched, "labels": labels})


TASKS.register("diffusion-mixture", diffusion_mixture_task, papers=(85,),
               summary="denoising score matching on a Gaussian mixture; test loss = exact "
                       "score error")
TASKS.register("diffusion-digits", diffusion_digits_task,
               summary="denoising score matching (eps-prediction) on sklearn's 8x8 digits")
