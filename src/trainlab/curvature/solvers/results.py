"""Frozen results of the curvature solvers: eigenpairs and stochastic estimates."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EigenResult:
    """Eigenpairs from :func:`~trainlab.curvature.lanczos` or
    :func:`~trainlab.curvature.top_eigenvalue` (power iteration, one pair).

    Attributes:
        values: ``(k,)`` Ritz values, in the order asked for (``"LA"`` descending, ``"SA"``
            ascending, ``"LM"`` by decreasing magnitude).
        vectors: ``(dim, k)`` orthonormal Ritz vectors (columns).
        residuals: ``(k,)`` residual norms :math:`\\|A y_i - \\theta_i y_i\\|` (the Lanczos
            estimate :math:`|\\beta_m s_{m,i}|`, exact up to rounding with full
            reorthogonalization).
        matvecs: operator products used.
        converged: ``(k,)`` booleans, residual within the tolerance.
        iterations: Lanczos steps taken (size of the Krylov basis).
    """

    values: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor
    matvecs: int
    converged: torch.Tensor
    iterations: int

    @property
    def all_converged(self) -> bool:
        return bool(self.converged.all())


@dataclass(frozen=True)
class Estimate:
    """A stochastic estimate with its standard error.

    Attributes:
        value: the estimate.
        stderr: its estimated standard error (``nan`` when it cannot be estimated, e.g. a
            single sample; 0 when the estimate is exact).
        matvecs: operator products used.
        samples: the per-probe terms whose mean is the stochastic part of the estimate.
    """

    value: float
    stderr: float
    matvecs: int
    samples: torch.Tensor
