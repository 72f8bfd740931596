"""Spectral density of a symmetric operator by stochastic Lanczos quadrature (SLQ)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from trainlab.curvature.operators._linear import LinearOperator, as_operator
from trainlab.curvature.solvers.lanczos import _Tridiagonal
from trainlab.curvature.solvers.random_vectors import random_probes
from trainlab.errors import ConfigError, check_range


@dataclass(frozen=True)
class SpectralDensity:
    r"""Gauss quadrature nodes and weights per probe: the density estimate is
    :math:`\phi(t) = \frac1p \sum_{l=1}^p \sum_j w_{lj}\, \delta(t - \theta_{lj})`
    (each row of weights sums to 1, so :math:`\phi` integrates to 1, like the normalized
    eigenvalue histogram :math:`\frac1n\sum_i \delta(t - \lambda_i)`).

    Attributes:
        nodes: ``(probes, steps)`` Ritz values (float64; padded with 0 where a probe's
            Krylov space was exhausted early).
        weights: ``(probes, steps)`` squared first components of the Ritz vectors (0 in
            the padding).
        dim: size of the operator (``dim * moment(k)`` estimates ``tr(A^k)``).
        matvecs: operator products used.
    """

    nodes: torch.Tensor
    weights: torch.Tensor
    dim: int
    matvecs: int

    def density(self, grid: torch.Tensor, sigma: float) -> torch.Tensor:
        """:math:`\\phi` smoothed by a Gaussian of width ``sigma > 0``, evaluated at ``grid``."""
        check_range("sigma", sigma, low=0.0, low_open=True, owner="SpectralDensity.density")
        t = grid.to(torch.float64)[:, None, None]
        kernel = torch.exp(-0.5 * ((t - self.nodes) / sigma) ** 2)
        kernel = kernel / (sigma * math.sqrt(2 * math.pi))
        return (kernel * self.weights).sum(dim=(1, 2)) / self.nodes.shape[0]

    def cdf(self, grid: torch.Tensor) -> torch.Tensor:
        """Estimated fraction of eigenvalues at or below each point of ``grid``."""
        below = grid.to(torch.float64)[:, None, None] >= self.nodes
        return (below * self.weights).sum(dim=(1, 2)) / self.nodes.shape[0]

    def moment(self, power: int) -> float:
        """Estimate of :math:`\\frac1n \\mathrm{tr}(A^{power})` (exact per probe for
        ``power <= 2 steps - 1``, up to the probe average)."""
        return ((self.weights * self.nodes ** power).sum(dim=1).mean()).item()


def lanczos_quadrature(op: LinearOperator | torch.Tensor, v: torch.Tensor, steps: int
                       ) -> tuple[torch.Tensor, torch.Tensor, int]:
    r"""Gauss quadrature of the spectral measure of ``op`` seen from ``v``: ``steps`` Lanczos
    steps from :math:`v/\|v\|` give nodes :math:`\theta_j` and weights :math:`\tau_j` with
    :math:`\sum_j \tau_j \theta_j^k = v^\top A^k v / v^\top v` for every
    :math:`k \le 2\,\mathrm{steps} - 1` (Golub & Meurant, "Matrices, moments and
    quadrature", 1994). Stops early, exactly, if the Krylov space becomes invariant.

    Returns:
        ``(nodes, weights, matvecs)``.
    """
    op = as_operator(op)
    check_range("steps", steps, low=1, high=op.dim, owner="lanczos_quadrature")
    norm = v.norm()
    if v.shape != (op.dim,) or not torch.isfinite(norm) or norm == 0:
        raise ConfigError(f"v must be a finite nonzero vector of shape ({op.dim},).")
    krylov = _Tridiagonal(op, (v / norm).to(op.dtype), steps)
    while True:
        w = krylov.step()
        if krylov.m == steps or krylov.broke_down():
            break
        krylov.advance(w, None)
    theta, s = krylov.ritz()
    return theta, s[0] ** 2, krylov.m


def spectral_density(
    op: LinearOperator | torch.Tensor,
    *,
    num_probes: int = 10,
    num_steps: int = 80,
    distribution: str = "rademacher",
    generator: torch.Generator | None = None,
) -> SpectralDensity:
    r"""Eigenvalue density by stochastic Lanczos quadrature ("Fast estimation of tr(f(A)) via
    stochastic Lanczos quadrature", Ubaru, Chen and Saad 2017; applied to network Hessians
    in "An investigation into neural net optimization via Hessian eigenvalue density",
    Ghorbani, Krishnan and Xiao 2019): one :func:`lanczos_quadrature` per random probe,
    averaged.

    Args:
        op: a symmetric :class:`LinearOperator` or dense tensor.
        num_probes: number of random start vectors ``>= 1`` (default 10).
        num_steps: Lanczos steps per probe, ``1 <= num_steps`` (default 80; capped at
            ``dim``), full reorthogonalization.
        distribution: probe distribution, ``"rademacher"`` or ``"gaussian"``.
        generator: randomness for the probes.

    Returns:
        :class:`SpectralDensity` (nodes, weights; ``.density(grid, sigma)``, ``.cdf``,
        ``.moment``).
    """
    op = as_operator(op)
    check_range("num_probes", num_probes, low=1, owner="spectral_density")
    check_range("num_steps", num_steps, low=1, owner="spectral_density")
    steps = min(num_steps, op.dim)
    nodes = torch.zeros(num_probes, steps, dtype=torch.float64)
    weights = torch.zeros(num_probes, steps, dtype=torch.float64)
    matvecs = 0
    for i in range(num_probes):
        v = random_probes(op.dim, 1, distribution, generator, op.dtype, op.device)[:, 0]
        theta, tau, used = lanczos_quadrature(op, v, steps)
        nodes[i, :used], weights[i, :used] = theta, tau
        matvecs += used
    return SpectralDensity(nodes, weights, op.dim, matvecs)
