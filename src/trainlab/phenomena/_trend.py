"""Trend statistics for phenomena whose claim is a trend (flat vs growing, earlier vs later):
an ordinary-least-squares slope with its confidence interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Slope:
    """A least-squares slope ``value`` with its two-sided ``level`` confidence interval
    ``[low, high]`` (Student t with ``n - 2`` degrees of freedom)."""

    value: float
    low: float
    high: float
    n: int
    level: float


def ols_slope(x, y, *, level: float = 0.95) -> Slope:
    r"""Slope of the least-squares line through the points ``(x_i, y_i)`` with its confidence
    interval :math:`b \pm t_{(1+level)/2,\,n-2}\,\mathrm{se}(b)`,
    :math:`\mathrm{se}(b)^2 = \frac{\sum_i r_i^2/(n-2)}{\sum_i (x_i-\bar x)^2}`.

    Repeated ``x`` (several seeds at one depth) are allowed: the residual scatter then carries
    the seed-to-seed spread into the interval. Needs at least 3 points and 2 distinct ``x``.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3 or np.ptp(x) == 0:
        raise ValueError(f"ols_slope needs >= 3 points with 2 distinct x, got x={x}")
    xc = x - x.mean()
    b = float(xc @ (y - y.mean()) / (xc @ xc))
    resid = y - y.mean() - b * xc
    se = float(np.sqrt(resid @ resid / (len(x) - 2) / (xc @ xc)))
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 2)) * se
    return Slope(b, b - half, b + half, len(x), level)
