r"""Feature Gradients: feature selection by gradient descent on a relaxed feature mask, scored
by a sublinear-sample estimate of learnability.

For standardized samples :math:`(x_i, y_i)_{i\le N}` and a mask :math:`s \in [0, 1]^D`, let
:math:`K_s(a, b) = x_a^\top \mathrm{diag}(s)\, x_b`. The estimator of the fraction of the
variance of :math:`y` that a linear model on the masked features explains (Kong & Valiant,
"Estimating Learnability in the Sublinear Data Regime", NeurIPS 2018) sums chains of
distinct samples:

.. math::
    T_k(s) = \sum_{i_0 < i_1 < \dots < i_{k+1}} y_{i_0}\, y_{i_{k+1}}
        \prod_{j=0}^{k} K_s(i_j, i_{j+1}),\qquad
    z(s) = \sum_{k=0}^{m-1} \frac{c_k}{\binom{N}{k+2}}\, T_k(s)

(:math:`m` = ``order``, :math:`c` = the estimator's coefficients for that order, a fit of a
polynomial to the spectrum, as tabulated by the authors). Each :math:`T_k` costs
:math:`O(N D)` through suffix sums (the paper's point: linear time and space, mini-batch
friendly). The learnability loss is :math:`1 - z(s)` for regression and
:math:`\tfrac12\big(1 - \sqrt{\mathrm{clip}_{[0,1]} z(s)}\big)` for binary classification
(labels :math:`\pm1`). With the relaxation :math:`s = \sigma(2\theta)` the search minimizes

.. math::  (1 - w)\,\mathrm{loss}(s) + w\,\tfrac1D \textstyle\sum_d s_d,\qquad w = C / (C + 1)

over :math:`\theta` with Adam (lr 0.1) on mini-batches; features are ranked by :math:`s`.

References:
    Sheth & Fusi, "Feature Gradients: Scalable Feature Selection via Discrete Relaxation",
    2019 (AISTATS 2020 as "Differentiable Feature Selection by Discrete Relaxation";
    papers.md row 78).

Source and deviations:
    The paper's text was not readable here (only its abstract); the objective, coefficients
    and defaults (``order=4``, ``penalty=1``, ``lr=0.1``, zero init, z-scored inputs, scores
    :math:`\sigma(2\theta)`) are taken from the authors' implementation in Microsoft NNI
    (``FeatureGradientSelector``, ``learnability.py``, ``constants.py``). Not included:
    gradient accumulation over several mini-batches, gradient-norm clipping of the authors'
    solver, multiclass (one-vs-rest) and ordinal targets, feature groups, and the "elbow"
    choice of the number of features. The relaxation to :math:`s = \sigma(2\theta)` during
    the search is this module's choice (the authors' solver default transform may be
    :math:`\sigma(\theta)`; the ranking is the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from trainlab.errors import ConfigError, check_choice, check_range

# c_k of the sublinear learnability estimator for each order m (m coefficients), as the
# authors tabulate them (NNI gradient_selector/constants.py, "computed running the sublinear
# paper's authors' code").
SLE_COEFFICIENTS: dict[int, tuple[float, ...]] = {
    1: (0.60355337,),
    2: (1.52705001, -0.34841729),
    3: (2.90254224, -1.87216745, 0.0),
    4: (4.63445685, -5.19936195, 0.0, 1.50391676),
    5: (6.92948049, -14.12216211, 9.4475009, 0.0, -1.21093546),
    6: (9.54431082, -28.09414643, 31.84703652, -11.18763791, -1.14175281, 0.0),
}


def chain_sums(s: torch.Tensor, x: torch.Tensor, y: torch.Tensor, order: int) -> torch.Tensor:
    r"""The chain sums :math:`T_0(s), \dots, T_{order-1}(s)` (module docstring) in
    :math:`O(\text{order}\cdot N D)`: :math:`r^{(0)} = y`,
    :math:`r^{(j+1)}_a = \sum_{b > a} K_s(a, b)\, r^{(j)}_b` and :math:`T_k = y^\top r^{(k+1)}`.
    Differentiable in ``s``."""
    r = y
    sums = []
    for _ in range(order):
        weighted = x * r[:, None]
        after = weighted.flip(0).cumsum(0).flip(0) - weighted  # sum over b > a
        r = (x * after) @ s
        sums.append(y @ r)
    return torch.stack(sums)


def learnability_loss(s: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, order: int = 4,
                      classification: bool = False) -> torch.Tensor:
    """The learnability loss of the features weighted by the mask ``s`` (lower = more of ``y``
    explained) on one mini-batch ``x`` (N, D), ``y`` (N,), both already standardized (``y``
    in ``{-1, 1}`` for classification)."""
    check_choice("order", order, sorted(SLE_COEFFICIENTS), owner="learnability_loss")
    n = x.shape[0]
    if n < order + 1:
        raise ConfigError(f"learnability_loss: a mini-batch of order {order} needs at least "
                          f"{order + 1} samples. Got {n} instead.")
    coeff = torch.tensor([c / math.comb(n, k + 2) for k, c in enumerate(SLE_COEFFICIENTS[order])],
                         dtype=x.dtype, device=x.device)
    z = coeff @ chain_sums(s, x, y, order)
    if classification:
        return 0.5 * (1.0 - torch.sqrt(z.clamp(0.0, 1.0) + 1e-12))
    return 1.0 - z


@dataclass(frozen=True)
class FeatureGradientsResult:
    """``scores`` (D,) in (0, 1), higher = more useful; ``ranking`` feature indices by
    decreasing score; ``selected`` the top ``n_features`` (all of ``ranking`` if None);
    ``losses`` the penalized objective per step."""

    scores: torch.Tensor
    ranking: torch.Tensor
    selected: torch.Tensor
    losses: list[float]


def _standardize(t: torch.Tensor) -> torch.Tensor:
    std = t.std(0, unbiased=False)
    return (t - t.mean(0)) / torch.where(std > 0, std, torch.ones_like(std))


def feature_gradients(x: torch.Tensor, y: torch.Tensor, *, n_features: int | None = None,
                      order: int = 4, penalty: float = 1.0, lr: float = 0.1,
                      epochs: int = 1, batch_size: int = 1000, classification: bool = False,
                      generator: torch.Generator | None = None) -> FeatureGradientsResult:
    """Rank the columns of ``x`` (N, D) by how much of ``y`` (N,) they explain together, by
    Feature Gradients (module docstring; papers.md row 78). ``x`` is z-scored; for regression
    ``y`` is standardized, for classification it must hold two labels (mapped to -1/+1).
    Mini-batches are drawn without replacement each epoch with ``generator``. Nothing the
    caller passed is modified."""
    owner = "feature_gradients"
    if x.dim() != 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
        raise ConfigError(f"{owner} expects x (N, D) and y (N,). Got {tuple(x.shape)} and "
                          f"{tuple(y.shape)} instead.")
    check_range("penalty", penalty, low=0.0, owner=owner)
    check_range("lr", lr, low=0.0, low_open=True, owner=owner)
    check_range("epochs", epochs, low=1, owner=owner)
    check_range("batch_size", batch_size, low=order + 1, owner=owner)
    n, d = x.shape
    if n_features is not None:
        check_range("n_features", n_features, low=1, high=d, owner=owner)
    xs = _standardize(x.detach())
    if classification:
        labels = torch.unique(y)
        if labels.numel() != 2:
            raise ConfigError(f"{owner}: classification supports two classes. Got "
                              f"{labels.numel()} instead.")
        ys = torch.where(y == labels[1], 1.0, -1.0).to(xs.dtype)
    else:
        ys = _standardize(y.detach().to(xs.dtype))
    theta = torch.zeros(d, dtype=xs.dtype, device=xs.device, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    w = penalty / (penalty + 1.0)
    batch = min(batch_size, n)
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator).to(xs.device)
        for start in range(0, n - batch + 1, batch):
            idx = perm[start:start + batch]
            with torch.enable_grad():
                s = torch.sigmoid(2.0 * theta)
                loss = ((1.0 - w) * learnability_loss(s, xs[idx], ys[idx], order=order,
                                                      classification=classification)
                        + w * s.sum() / d)
                opt.zero_grad()
                loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    scores = torch.sigmoid(2.0 * theta.detach())
    ranking = torch.argsort(scores, descending=True)
    selected = ranking[:n_features] if n_features is not None else ranking
    return FeatureGradientsResult(scores, ranking, selected, losses)
