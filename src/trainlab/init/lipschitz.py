r"""Initialization analysis of 1-Lipschitz AOL layers ("1-Lipschitz Network Initialization for
Certifiably Robust Classification", Juston et al. 2025, papers.md row 64).

AOL rescales its weight by :math:`\mathrm{diag}(\sum_j |W^TW|_{ij})^{-1/2}`, so the variance
:math:`\sigma^2` of the raw weights cancels: only the layer's shape sets the effective weight
variance, and with ReLU every layer shrinks the signal; deep AOL networks start with outputs
decaying to zero whatever :math:`\sigma^2` is. These functions give the paper's approximation
(checked against the authors' repository Marius-Juston/SLLLipschitzInitialization).
"""

from __future__ import annotations

import math

from trainlab.errors import check_range


def mean_abs_dot(d: int) -> float:
    r""":math:`E|x \cdot y|` for independent :math:`x, y \sim N(0, I_d)`:
    :math:`\tfrac{2}{\sqrt\pi}\Gamma(\tfrac{d+1}{2})/\Gamma(\tfrac d2)` (half the repository's
    :math:`E(d)`)."""
    check_range("d", d, low=1, owner="mean_abs_dot")
    return 2.0 / math.sqrt(math.pi) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))


def aol_weight_variance(out_features: int, in_features: int) -> float:
    r"""Approximate variance of one entry of the AOL-rescaled weight :math:`\tilde W`
    (``(out, in)``), independent of the raw weight variance:
    :math:`1 / (d + (n - 1) E|x\cdot y|)` with :math:`d` = ``out_features`` (the length of a
    column) and :math:`n` = ``in_features``. Approximation: the row sums of :math:`|W^TW|`
    are replaced by their means."""
    check_range("in_features", in_features, low=1, owner="aol_weight_variance")
    return 1.0 / (out_features + (in_features - 1) * mean_abs_dot(out_features))


def aol_relu_decay(out_features: int, in_features: int) -> float:
    r"""Factor by which one AOL + ReLU layer multiplies the signal's second moment,
    :math:`(n/2)\,\mathrm{Var}(\tilde W) < \tfrac12 n/d`; below 1, so depth shrinks outputs."""
    return in_features / 2.0 * aol_weight_variance(out_features, in_features)
