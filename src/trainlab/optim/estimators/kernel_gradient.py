r"""Kernelized gradient estimation: the Gaussian-process posterior mean of a gradient field
from a history of evaluated gradients.

Modelling each coordinate of :math:`\nabla f` as an independent GP with a shared kernel
:math:`k`, the posterior mean at :math:`\theta` given the history
:math:`X = [\theta_1..\theta_m]`, :math:`G = [\nabla f(\theta_1)..\nabla f(\theta_m)]` is

.. math::  \mu(\theta) = k(\theta, X)\, (K + \sigma^2 I)^{-1} G,
    \qquad K_{ij} = k(\theta_i, \theta_j),

which interpolates the history as :math:`\sigma \to 0`. Kernels: ``"matern52"``
:math:`(1 + \sqrt5 r/\ell + 5r^2/3\ell^2)\,e^{-\sqrt5 r/\ell}` and ``"rbf"``
:math:`e^{-r^2/2\ell^2}`; ``lengthscale=None`` uses the median pairwise distance of the
history (a heuristic of this implementation).

References:
    Shu, Fang, He, Yu. "OptEx: Expediting First-Order Optimization with Approximately
    Parallelized Iterations", NeurIPS 2024 (papers.md row 72), kernelized gradient estimation.
"""

from __future__ import annotations

import torch

from trainlab.errors import ConfigError, check_choice, check_range

KERNELS = ("matern52", "rbf")


def kernel_matrix(a: torch.Tensor, b: torch.Tensor, kernel: str, lengthscale: float
                  ) -> torch.Tensor:
    """``k(a_i, b_j)`` for rows ``a`` (``m x d``) and ``b`` (``n x d``)."""
    check_choice("kernel", kernel, KERNELS, owner="kernel_matrix")
    r = torch.cdist(a, b) / lengthscale
    if kernel == "rbf":
        return torch.exp(-0.5 * r * r)
    s = 5 ** 0.5 * r  # matern52
    return (1 + s + s * s / 3) * torch.exp(-s)


def median_lengthscale(points: torch.Tensor) -> float:
    """Median pairwise distance of the rows of ``points`` (1 when undefined)."""
    if points.shape[0] < 2:
        return 1.0
    d = torch.pdist(points)
    med = float(d.median())
    return med if med > 0 else 1.0


def kernel_gradient(points: torch.Tensor, values: torch.Tensor, query: torch.Tensor, *,
                    kernel: str = "matern52", lengthscale: float | None = None,
                    noise: float = 1e-6) -> torch.Tensor:
    """GP posterior mean at ``query`` (``d`` or ``q x d``) of the field observed as
    ``values`` (``m x d``) at ``points`` (``m x d``).

    Deviations from the paper: one shared kernel for every coordinate, the Matérn-5/2 default, the
    median-distance lengthscale and ``noise = 1e-6`` are this implementation's choices (see above);
    how OptEx chooses its kernel, lengthscale and history window was not re-read for this paragraph.
    """
    check_range("noise", noise, low=0.0, owner="kernel_gradient")
    if points.ndim != 2 or values.shape != points.shape:
        raise ConfigError(f"kernel_gradient: points and values must be m x d with the same "
                          f"shape; got {tuple(points.shape)} and {tuple(values.shape)}")
    ell = median_lengthscale(points) if lengthscale is None else lengthscale
    single = query.ndim == 1
    q = query[None] if single else query
    gram = kernel_matrix(points, points, kernel, ell)
    gram = gram + noise * torch.eye(len(points), dtype=gram.dtype, device=gram.device)
    weights = torch.linalg.solve(gram, kernel_matrix(points, q, kernel, ell))  # m x q
    mean = weights.T @ values
    return mean[0] if single else mean
