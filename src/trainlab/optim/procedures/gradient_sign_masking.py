r"""GradFix: transport a task vector to a new pre-trained model with a gradient-sign mask
(papers.md row 45)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from trainlab.errors import ConfigError, check_choice


def descent_signs(grads: Sequence[torch.Tensor],
                  vote: Literal["mean", "majority"] = "mean") -> list[torch.Tensor]:
    r"""The sign of the descent direction of the target model's loss, per coordinate.

    ``vote="mean"``: ``grads`` are (mean) gradients, one per parameter, and the result is
    :math:`\mathrm{sign}(-\bar g)`. ``vote="majority"``: each tensor has a leading sample
    dimension (per-sample gradients) and the result is the majority vote
    :math:`\mathrm{sign}(\sum_j \mathrm{sign}(-g_j))` (the paper's few-sample estimator)."""
    check_choice("vote", vote, ("mean", "majority"), owner="descent_signs")
    if vote == "mean":
        return [torch.sign(-g) for g in grads]
    return [torch.sign(torch.sign(-g).sum(0)) for g in grads]


def gradient_sign_mask(task_vector: Sequence[torch.Tensor], signs: Sequence[torch.Tensor]
                       ) -> list[torch.Tensor]:
    r"""Keep the coordinates of the task vector :math:`\tau` whose sign agrees with the
    descent sign :math:`s` of the target model, zero the others:
    :math:`m \odot \tau` with :math:`m = [\mathrm{sign}(\tau) = s]`."""
    if len(task_vector) != len(signs):
        raise ConfigError(f"gradient_sign_mask needs one sign tensor per task-vector tensor. "
                          f"Got {len(task_vector)} and {len(signs)} instead.")
    out = []
    for t, s in zip(task_vector, signs):
        if t.shape != s.shape:
            raise ConfigError(f"gradient_sign_mask: task-vector shape {tuple(t.shape)} does not "
                              f"match sign shape {tuple(s.shape)}")
        out.append(torch.where(torch.sign(t) == s, t, torch.zeros_like(t)))
    return out


def transport_task_vector(target_params: Sequence[torch.Tensor],
                          task_vector: Sequence[torch.Tensor], target_grads: Sequence[torch.Tensor],
                          alpha: float = 1.0, vote: Literal["mean", "majority"] = "mean"
                          ) -> list[torch.Tensor]:
    r"""GradFix (Rinaldi et al., "Gradient-Sign Masking for Task Vector Transport Across
    Pre-Trained Models", ICLR 2026; papers.md row 45).

    A task vector :math:`\tau_A = \theta_A^{ft} - \theta_A` learned on a source pre-trained
    model is moved onto a new pre-trained model :math:`\theta_B` without fine-tuning:
    :math:`\theta_B^{new} = \theta_B + \alpha\,(m \odot \tau_A)` where :math:`m` keeps the
    coordinates whose sign matches the descent direction :math:`-\nabla L_B(\theta_B)` estimated
    from a few labelled target samples (:func:`descent_signs`). The masked vector has a
    non-positive inner product with :math:`\nabla L_B` (first-order descent guarantee).

    Deviations from the paper: the default ``vote="mean"`` (the sign of the mean target
    gradient) is this library's; the paper's few-sample estimator is the majority vote of
    per-sample signs (``vote="majority"``, see :func:`descent_signs`). ``alpha = 1`` is this
    function's default; how the paper chooses ``alpha`` and the number of labelled samples
    was not re-read for this paragraph.

    Args:
        target_params: :math:`\theta_B`, one tensor per parameter (not modified).
        task_vector: :math:`\tau_A`, same shapes.
        target_grads: gradients of the target loss at :math:`\theta_B` (per-sample, with a
            leading sample dimension, for ``vote="majority"``).
        alpha: scaling coefficient of the transported vector (> 0).

    Returns:
        the new parameters (new tensors).
    """
    if not alpha > 0:
        raise ConfigError(f"The 'alpha' parameter of transport_task_vector must be in the range "
                          f"(0, inf). Got {alpha!r} instead.")
    masked = gradient_sign_mask(task_vector, descent_signs(target_grads, vote))
    return [p.detach() + alpha * m for p, m in zip(target_params, masked)]
