r"""Loss landscapes: the loss along lines and planes through parameter space.

- Random slices along Gaussian directions with *filter normalization* (Li, Xu, Taylor, Studer,
  Goldstein, "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018): each filter
  (row along the first dimension) of a direction is rescaled to the norm of the matching
  filter of the weights, so slices of networks with different weight scales compare; 1-D
  tensors (biases, normalization scales) get a zero direction (the paper's ``biasbn`` rule).
- Slices along given directions such as Hessian eigenvectors (:func:`slice_1d` takes any
  direction).
- Linear interpolation from one point to another, e.g. initialization to solution
  (Goodfellow, Vinyals, Saxe, "Qualitatively characterizing neural network optimization
  problems", ICLR 2015; papers.md row 104).
- The roughness index of row 15, built on these slices, lives in
  :mod:`trainlab.analyses.roughness` (its probe in :mod:`trainlab.probes.roughness`).

Every function evaluates the loss with ``torch.func.functional_call`` on parameter
dictionaries: the model's weights are never written, and the model runs in eval mode
(restored afterwards) so normalization layers use, and do not update, their statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainlab.curvature import loss_function, trainable_params
from trainlab.errors import check_choice, check_range
from trainlab.restore import preserved

Params = dict[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, Any], torch.Tensor]


def filter_normalize(direction: Params, params: Params, *, ignore_1d: bool = True) -> Params:
    """Li et al.'s filter normalization: for tensors with >= 2 dims, each filter ``d[i]`` is
    scaled to ``||w[i]|| / (||d[i]|| + 1e-10) * d[i]``; 1-D tensors become zero
    (``ignore_1d``) or a copy of the weights (the paper's code without ``biasbn``)."""
    out = {}
    for n, d in direction.items():
        w = params[n]
        if w.dim() <= 1:
            out[n] = torch.zeros_like(w) if ignore_1d else w.clone()
            continue
        wn = w.reshape(w.shape[0], -1).norm(dim=1)
        dn = d.reshape(d.shape[0], -1).norm(dim=1)
        scale = (wn / (dn + 1e-10)).reshape(-1, *([1] * (w.dim() - 1)))
        out[n] = d * scale
    return out


def random_direction(params: Params, *, generator: torch.Generator | None = None,
                     normalization: str = "filter", ignore_1d: bool = True) -> Params:
    """A Gaussian direction in parameter space, normalized by ``"filter"`` (default),
    ``"layer"`` (each tensor scaled to the weight tensor's norm) or ``"none"``."""
    check_choice("normalization", normalization, ("filter", "layer", "none"),
                 owner="random_direction")
    d = {n: torch.randn(w.shape, generator=generator, dtype=w.dtype).to(w.device)
         for n, w in params.items()}
    if normalization == "filter":
        return filter_normalize(d, params, ignore_1d=ignore_1d)
    if normalization == "layer":
        return {n: (torch.zeros_like(v) if ignore_1d and v.dim() <= 1
                    else v * params[n].norm() / (v.norm() + 1e-10)) for n, v in d.items()}
    return d


def _evaluator(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any
               ) -> Callable[[Params], float]:
    f = loss_function(model, loss_fn, inputs, targets)

    def value(p: Params) -> float:
        with torch.no_grad():
            return float(f(p))

    return value


def _axpy(base: Params, terms: Sequence[tuple[float, Params]]) -> Params:
    out = {}
    for n, w in base.items():
        v = w.clone()
        for coef, d in terms:
            v.add_(d[n], alpha=coef)
        out[n] = v
    return out


def slice_1d(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any, direction: Params,
             ts: Sequence[float] | torch.Tensor, *, center: Params | None = None
             ) -> torch.Tensor:
    """Loss at ``center + t * direction`` for each ``t`` (center: the current parameters).

    Deviations from the papers: a slice along the given direction only (random filter-normalized
    directions come from this module's direction helpers, following Li et al. 2018, which is not a
    papers.md row); the loss is evaluated on the given batch in eval mode.
    """
    center = trainable_params(model) if center is None else center
    with preserved(model):
        model.eval()
        value = _evaluator(model, loss_fn, inputs, targets)
        return torch.tensor([value(_axpy(center, [(float(t), direction)])) for t in ts],
                            dtype=torch.float64)


def slice_2d(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any, d1: Params,
             d2: Params, xs: Sequence[float] | torch.Tensor, ys: Sequence[float] | torch.Tensor,
             *, center: Params | None = None) -> torch.Tensor:
    """Loss on the grid ``center + x d1 + y d2``; ``out[i, j]`` is at ``(xs[i], ys[j])``.

    Deviations from the paper: a plane along the two given directions, evaluated on the given batch
    in eval mode; row 15's roughness index on top of such slices is
    :func:`trainlab.analyses.roughness.roughness_index` (see its deviations).
    """
    center = trainable_params(model) if center is None else center
    with preserved(model):
        model.eval()
        value = _evaluator(model, loss_fn, inputs, targets)
        return torch.tensor([[value(_axpy(center, [(float(x), d1), (float(y), d2)]))
                              for y in ys] for x in xs], dtype=torch.float64)


@dataclass(frozen=True)
class Interpolation:
    """Loss along ``(1 - a) theta_a + a theta_b``: the ``alphas``, the ``losses``, the
    ``barrier`` (largest excess over the straight line between the end losses, >= 0) and
    whether the losses decrease monotonically."""

    alphas: torch.Tensor
    losses: torch.Tensor
    barrier: float
    monotone: bool


def interpolate(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any,
                theta_a: Params, theta_b: Params | None = None, *, points: int = 25
                ) -> Interpolation:
    """Loss on the segment from ``theta_a`` (e.g. the initialization) to ``theta_b`` (default:
    the model's current parameters), at ``points`` evenly spaced alphas including both ends
    (Goodfellow et al. 2015).

    Deviations from the paper: the segment is evaluated at ``points`` values in [0, 1] on the given
    batch with the model in eval mode (the paper plots the loss on its training data, in its own
    evaluation mode); extending the line past its ends, as plots often do, is left to
    :func:`slice_1d`.
    """
    check_range("points", points, low=2, owner="interpolate")
    theta_b = trainable_params(model) if theta_b is None else theta_b
    alphas = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    diff = {n: theta_b[n] - theta_a[n] for n in theta_a}
    losses = slice_1d(model, loss_fn, inputs, targets, diff, alphas, center=theta_a)
    line = (1 - alphas) * losses[0] + alphas * losses[-1]
    barrier = float((losses - line).max().clamp_min(0.0))
    return Interpolation(alphas, losses, barrier, bool((losses[1:] <= losses[:-1]).all()))
