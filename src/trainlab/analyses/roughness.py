r"""Roughness index of the loss around the current parameters.

Wu, Jian, Du, Chen, Zhou, "Roughness Index for Loss Landscapes of Neural Network Models of
Partial Differential Equations" (arXiv 2103.11069, 2021; first version titled "Understanding
Loss Landscapes of Neural Network Models in Solving Partial Differential Equations");
papers.md row 15.

For :math:`M` random directions :math:`\delta_k`, the loss is sampled along the line
:math:`f_k(t) = L(\theta + t\,\delta_k)` at the :math:`m + 1` evenly spaced points
:math:`t_i = -\lambda + 2\lambda i / m` of :math:`[-\lambda, \lambda]`, and each slice gets the
normalized total variation

.. math::

    T_k = \frac{\sum_{i=0}^{m-1} |f_k(t_{i+1}) - f_k(t_i)|}
               {2\lambda\,\bigl(\max_i f_k(t_i) - \min_i f_k(t_i)\bigr)} .

The roughness index is the coefficient of variation of these values,
:math:`\mathrm{RI} = \mathrm{std}(T) / \mathrm{mean}(T)` with the sample (``ddof = 1``)
standard deviation. A parabola centred on the current point gives :math:`T = 1/\lambda`
along every direction (RI = 0); a monotone slice gives :math:`1/(2\lambda)`; oscillating
slices give more, and differently along different directions, so RI grows.

Directions are Gaussian with Li et al.'s filter normalization (each row of a weight tensor
scaled to the norm of the matching row of the weights); a 1-D tensor (bias) gets the
weights themselves as its direction, so ``t`` rescales it by ``1 + t``.

Sources: the abstract (RI built from the mean and variance of the normalized total
variation of 1-D random projections); everything else, the formula above, the bias rule and
the defaults, from the authors' released code (``wukekever/landscapes``: the ``tvd``
function of ``code/Results10D/Index_10D/Index_D*M_10D_li01_m_10_M_100.py`` and the
``code/Results1D/.../compare_index`` scripts): the sum of absolute differences divided by
the interval length and by max - min; ``np.sqrt(np.var(T, ddof=1)) / mean(T)``; directions
drawn with ``ignore='biasbn'`` and then re-normalized with the bias directions copied from
the weights; ``M = 100``, ``m = 10``, ``l_i = 0.1`` in the 10-D index scripts (the 1-D
experiments use intervals from 1e-4 to 0.4 and ``m`` from 10 to 200, always ``M = 100``).

Deviations and uncertainty: the paper's own text (its definition section) could not be read
here, only its abstract and the code (searched again: the search tool's "pages" corpus holds
a markdown copy of arXiv 2103.11069 and several summary pages, each only up to the
abstract); if the paper states the normalization differently
(e.g. without the interval length, which only rescales every :math:`T_k` and leaves RI
unchanged) the code was followed. The loss is evaluated with the model in eval mode (the
authors' networks have no normalization or dropout layers, where the two agree). A slice
along which the loss is exactly constant has no normalized variation: its :math:`T_k` and
the index are NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainlab.analyses.landscape import random_direction, slice_1d
from trainlab.curvature import trainable_params
from trainlab.errors import check_range

LossFn = Callable[[torch.Tensor, Any], torch.Tensor]


def normalized_total_variation(values: torch.Tensor, interval_length: float) -> torch.Tensor:
    r"""Total variation of a sampled slice over its interval length and range,
    :math:`\sum_i |f_{i+1} - f_i| / (\ell\,(\max f - \min f))`: :math:`1/\ell` for a monotone
    profile, :math:`2/\ell` for one valley, more when it oscillates; NaN for a constant one.

    >>> t = torch.linspace(-0.1, 0.1, 11, dtype=torch.float64)
    >>> round(float(normalized_total_variation(t ** 2, 0.2)), 6)
    10.0
    """
    check_range("interval_length", interval_length, low=0.0, low_open=True,
                owner="normalized_total_variation")
    tv = (values[1:] - values[:-1]).abs().sum()
    span = values.max() - values.min()
    if span <= 0:
        return torch.full((), float("nan"), dtype=values.dtype)
    return tv / (interval_length * span)


@dataclass(frozen=True)
class Roughness:
    """The roughness ``index`` (std / mean of the normalized total variations), their
    ``mean`` and sample ``std`` (``ddof = 1``), and the per-direction values ``ntv``."""

    index: float
    mean: float
    std: float
    ntv: torch.Tensor


def roughness_index(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any, *,
                    directions: int = 100, radius: float = 0.1, intervals: int = 10,
                    normalization: str = "filter", ignore_1d: bool = False,
                    generator: torch.Generator | None = None) -> Roughness:
    r"""Roughness index of ``loss_fn(model(inputs), targets)`` at the current parameters
    (Wu et al. 2021, papers.md row 15; formula in the module docstring).

    Args:
        directions: number :math:`M` of random directions, >= 2 (paper's code: 100).
        radius: half-width :math:`\lambda` of the interval of ``t``, > 0 (paper's code:
            0.1 for the 10-D Poisson problem).
        intervals: number :math:`m` of sub-intervals, so ``intervals + 1`` loss evaluations
            per direction, >= 2 (paper's code: 10).
        normalization: direction scaling, ``"filter"`` (paper), ``"layer"`` or ``"none"``.
        ignore_1d: give 1-D tensors a zero direction (Li et al.'s ``biasbn`` option)
            instead of the paper's copy of the weights.
        generator: source of the random directions.

    Returns:
        :class:`Roughness`. The model (weights, mode, grads, RNG) is left as found.
    """
    check_range("directions", directions, low=2, owner="roughness_index")
    check_range("radius", radius, low=0.0, low_open=True, owner="roughness_index")
    check_range("intervals", intervals, low=2, owner="roughness_index")
    center = trainable_params(model)
    ts = torch.linspace(-radius, radius, intervals + 1, dtype=torch.float64)
    values = []
    for _ in range(directions):
        d = random_direction(center, generator=generator, normalization=normalization,
                             ignore_1d=ignore_1d)
        profile = slice_1d(model, loss_fn, inputs, targets, d, ts, center=center)
        values.append(normalized_total_variation(profile, 2.0 * radius))
    ntv = torch.stack(values)
    mean, std = ntv.mean(), ntv.std(correction=1)
    return Roughness(float(std / mean), float(mean), float(std), ntv)
