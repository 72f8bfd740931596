r"""Spectral metrics of each weight matrix: spectral norm, stable rank and the power-law
exponent of the tail of its empirical spectral density, as WeightWatcher reports them
(Martin & Mahoney, "Implicit Self-Regularization in Deep Neural Networks", JMLR 2021).

The ESD is the set of eigenvalues :math:`\lambda_k = \sigma_k^2` of :math:`W^T W`. Its tail
is fitted by a power law :math:`p(\lambda) \propto \lambda^{-\alpha}` for
:math:`\lambda \ge \lambda_{min}` by maximum likelihood, with :math:`\lambda_{min}` chosen to
minimize the Kolmogorov-Smirnov distance between the tail and the fit (Clauset, Shalizi &
Newman, "Power-law distributions in empirical data", 2009, the method of the ``powerlaw``
package WeightWatcher uses): :math:`\hat\alpha = 1 + n / \sum_i \ln(\lambda_i/\lambda_{min})`.

Deviations: WeightWatcher passes ``xmax = max eigenvalue`` to ``powerlaw`` and offers
truncated fits and "fix fingers" options; this is the plain untruncated fit. Candidate
:math:`\lambda_{min}` keep at least ``min_tail`` eigenvalues in the tail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from trainlab.errors import check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.effective_rank import as_matrix


@dataclass(frozen=True)
class PowerLawFit:
    """Fitted exponent ``alpha``, the tail start ``xmin``, KS distance ``D``, tail size."""

    alpha: float
    xmin: float
    ks_distance: float
    n_tail: int


def _ks(log_tail: torch.Tensor, log_xmin: float, alpha: torch.Tensor | float) -> float:
    """Two-sided KS distance between a sorted tail and the Pareto law (alpha, xmin)."""
    m = log_tail.numel()
    model_cdf = 1.0 - torch.exp(-(alpha - 1.0) * (log_tail - log_xmin))
    i = torch.arange(m, dtype=log_tail.dtype)
    return float(torch.maximum((i + 1) / m - model_cdf, model_cdf - i / m).max())


def power_law_alpha(values: torch.Tensor, *, min_tail: int = 10,
                    xmin: float | None = None) -> PowerLawFit:
    r"""Continuous power-law MLE of the tail of ``values`` (positive entries only), with the
    KS-optimal :math:`x_{min}` unless ``xmin`` is given."""
    check_range("min_tail", min_tail, low=2, owner="power_law_alpha")
    x = torch.sort(values.detach().double().reshape(-1)).values
    x = x[x > 0]
    if xmin is not None:
        x = x[x >= xmin]
    n = x.numel()
    if n < min_tail:
        return PowerLawFit(float("nan"), float("nan"), float("nan"), n)
    logx = x.log()
    if xmin is not None:
        alpha = 1.0 + n / (logx - math.log(xmin)).sum()
        return PowerLawFit(float(alpha), float(xmin), _ks(logx, math.log(xmin), alpha), n)
    suffix = torch.flip(torch.cumsum(torch.flip(logx, [0]), 0), [0])  # sum_{j>=k} log x_j
    best = PowerLawFit(float("nan"), float("nan"), float("inf"), 0)
    for k in range(n - min_tail + 1):
        m = n - k
        denom = suffix[k] - m * logx[k]
        if denom <= 0:
            continue
        alpha = 1.0 + m / denom
        d = _ks(logx[k:], float(logx[k]), alpha)
        if d < best.ks_distance:
            best = PowerLawFit(float(alpha), float(x[k]), float(d), m)
    return best


class WeightSpectrum(Probe):
    """Per weight tensor (>= 2 dims, flattened to ``(out, rest)``): ``spectral_norm/<n>``,
    ``stable_rank/<n>`` :math:`= \\|W\\|_F^2/\\|W\\|_2^2`, and ``alpha/<n>`` (power-law
    exponent of the ESD tail; only when the matrix has at least ``min_tail`` singular values).

    Args:
        every: cadence.
        min_tail: smallest tail the power-law fit may use (default 10; WeightWatcher advises
            at least 50 eigenvalues for a trustworthy alpha).
    """

    name = "weight-spectrum"

    def __init__(self, every: int = 1, min_tail: int = 10):
        super().__init__(every)
        check_range("min_tail", min_tail, low=2, owner="weight-spectrum")
        self.min_tail = min_tail

    def measure(self, ctx: ProbeContext) -> Measurement:
        out: Measurement = {}
        for n, w in ctx.params().items():
            if w.dim() < 2:
                continue
            s = torch.linalg.svdvals(as_matrix(w))
            out[f"spectral_norm/{n}"] = s[0]
            out[f"stable_rank/{n}"] = s.pow(2).sum() / s[0].pow(2).clamp_min(1e-300)
            if s.numel() >= self.min_tail:
                out[f"alpha/{n}"] = power_law_alpha(s.pow(2), min_tail=self.min_tail).alpha
        return out


PROBES.register("weight-spectrum", WeightSpectrum, ddp="replicated",
                metrics=("spectral_norm/*", "stable_rank/*"),
                plot="curves", title="Weight spectra",
                summary="spectral norm, stable rank and ESD power-law alpha (MLE) per layer")
