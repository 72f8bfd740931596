r"""Divergence of two training runs: how far apart, and how separated, two models are.

"The Butterfly Effect: Training Trajectories Are Highly Sensitive to Initial Conditions"
(Kwok, Altıntaş, Raffel, Rolnick, ICML 2025; papers.md row 8) compares runs that differ by a
tiny perturbation with four measures, all here: the parameter L2 distance, the loss barrier
on the linear path between them, the same two after aligning the hidden units by a
permutation (weight matching), and representational similarity (here linear CKA per layer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainlab.analyses.cka import layer_cka
from trainlab.analyses.landscape import interpolate
from trainlab.analyses.weight_matching import weight_matching
from trainlab.curvature import trainable_params

LossFn = Callable[[torch.Tensor, Any], torch.Tensor]


def parameter_distance(model_a: nn.Module, model_b: nn.Module) -> torch.Tensor:
    """:math:`\\|\\theta_a - \\theta_b\\|_2` over all trainable parameters."""
    pa, pb = trainable_params(model_a), trainable_params(model_b)
    return torch.stack([(pa[n] - pb[n]).pow(2).sum() for n in pa]).sum().sqrt()


def loss_barrier(model_a: nn.Module, model_b: nn.Module, loss_fn: LossFn, inputs: Any,
                 targets: Any, *, points: int = 25) -> float:
    """Largest excess of the loss on the segment between the two models' parameters over
    the straight line between their losses (0 for linearly connected models)."""
    return interpolate(model_a, loss_fn, inputs, targets, trainable_params(model_a),
                       trainable_params(model_b), points=points).barrier


@dataclass(frozen=True)
class Divergence:
    """The four measures of paper row 8 (``aligned_*`` are None when not computed)."""

    distance: float
    barrier: float
    aligned_distance: float | None
    aligned_barrier: float | None
    cka: dict[str, float]


def paired_divergence(model_a: nn.Module, model_b: nn.Module, loss_fn: LossFn, inputs: Any,
                      targets: Any, *, align: bool = True, points: int = 25,
                      generator: torch.Generator | None = None) -> Divergence:
    """All divergence measures between two models of the same architecture. ``align`` uses
    weight matching (MLPs as ``nn.Sequential``); neither model is changed.

    Deviations from the paper: weight matching (alignment) is implemented for MLPs given as
    ``nn.Sequential`` only; representational similarity is linear CKA per layer (the paper
    reports angular CKA, by a summary of it); the barrier is the largest excess over the
    straight line at ``points`` alphas, where the authors' code (github.com/gsaltintas/lmc)
    takes 11 alphas and the excess at the alpha of the path's largest loss.
    """
    aligned = weight_matching(model_a, model_b, generator=generator) if align else None
    return Divergence(
        float(parameter_distance(model_a, model_b)),
        loss_barrier(model_a, model_b, loss_fn, inputs, targets, points=points),
        None if aligned is None else float(parameter_distance(model_a, aligned)),
        None if aligned is None else loss_barrier(model_a, aligned, loss_fn, inputs, targets,
                                                  points=points),
        {k: float(v) for k, v in layer_cka(model_a, model_b, inputs).items()},
    )
