r"""Nearest-neighbour estimates of the gradient of a regression function.

For samples :math:`(X_i, Y_i)` of :math:`Y = m(X) + \varepsilon`, the gradient
:math:`\nabla m(x)` is the slope of a linear model fitted on the :math:`k` nearest
neighbours :math:`N_k(x)` of :math:`x`:

.. math::  (\hat a, \hat\beta) \in \arg\min_{a, \beta}\; \frac1k \sum_{i \in N_k(x)}
    \big(Y_i - a - \beta^\top (X_i - x)\big)^2 + \lambda \|\beta\|_1,
    \qquad \widehat{\nabla m}(x) = \hat\beta,

a local-linear least-squares fit (``l1 = 0``) or its Lasso version for high-dimensional
covariates (``l1 > 0``; solved by proximal gradient, ISTA). The intercept is profiled out by
centring the neighbours. The estimation error decreases with the sample size for
:math:`k \to \infty`, :math:`k/n \to 0` (tested on a known function).

References:
    Ausset, Clémençon, Portier. "Nearest Neighbour Based Estimates of Gradients: Sharp
    Nonasymptotic Bounds and Applications", AISTATS 2021 (papers.md row 67).

Deviations from the paper:
    ``k`` and ``l1`` are the caller's choice (the paper's theory sets them from ``n``, ``d``
    and the noise level); the penalty is the plain Lasso on the raw (unscaled) neighbours.
"""

from __future__ import annotations

import torch

from trainlab.errors import ConfigError, check_range


def _lasso(design: torch.Tensor, target: torch.Tensor, l1: float, iters: int) -> torch.Tensor:
    """``argmin_b (1/k)||target - design b||^2 + l1 ||b||_1`` by ISTA."""
    k = design.shape[0]
    lipschitz = 2 * float(torch.linalg.matrix_norm(design, ord=2)) ** 2 / k
    if lipschitz == 0.0:
        return torch.zeros(design.shape[1], dtype=design.dtype, device=design.device)
    step = 1.0 / lipschitz
    b = torch.zeros(design.shape[1], dtype=design.dtype, device=design.device)
    for _ in range(iters):
        z = b - step * (2.0 / k) * design.T @ (design @ b - target)
        b = torch.sign(z) * (z.abs() - step * l1).clamp_min(0.0)
    return b


def knn_gradient(x: torch.Tensor, y: torch.Tensor, query: torch.Tensor, k: int, *,
                 l1: float = 0.0, lasso_iters: int = 500) -> torch.Tensor:
    """Estimate ``grad m`` at ``query`` (``d`` or ``q x d``) from samples ``x`` (``n x d``),
    ``y`` (``n``) with the ``k``-NN local-linear (``l1 = 0``) or Lasso fit."""
    if x.ndim != 2 or y.shape != x.shape[:1]:
        raise ConfigError(f"knn_gradient: x must be n x d and y of length n; got "
                          f"{tuple(x.shape)} and {tuple(y.shape)}")
    check_range("k", k, low=x.shape[1] + 1 if l1 == 0 else 2, high=x.shape[0],
                owner="knn_gradient")
    check_range("l1", l1, low=0.0, owner="knn_gradient")
    single = query.ndim == 1
    q = query[None] if single else query
    idx = torch.cdist(q, x).topk(k, largest=False).indices  # q x k
    out = []
    for row, nn in zip(q, idx):
        design = x[nn] - row
        design = design - design.mean(0)
        target = y[nn] - y[nn].mean()
        if l1 == 0.0:
            out.append(torch.linalg.lstsq(design, target[:, None]).solution[:, 0])
        else:
            out.append(_lasso(design, target, l1, lasso_iters))
    grads = torch.stack(out)
    return grads[0] if single else grads
