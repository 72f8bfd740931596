r"""Critical points of covariance factorization with the Bures-Wasserstein loss (Bréchet,
Papagiannouli, An & Montúfar, "Critical Points and Convergence Analysis of Generative Deep
Linear Networks Trained with Bures-Wasserstein Loss", ICML 2023; papers.md row 96).

A generative linear network maps latent noise :math:`z \sim \mathcal N(0, I_k)` to
:math:`x = W z` with :math:`W = W_L \cdots W_1 \in \mathbb R^{n \times k}`, so it models the
covariance :math:`\Sigma_W = W W^T` of rank at most ``k`` (the narrowest layer). It is fitted to
a target covariance :math:`\Sigma_0` with the squared Bures-Wasserstein distance

.. math::
    B^2(\Sigma_0, \Sigma_W) = \operatorname{tr}\Sigma_0 + \operatorname{tr}\Sigma_W
    - 2 \operatorname{tr}\big(\Sigma_0^{1/2}\Sigma_W\Sigma_0^{1/2}\big)^{1/2}
    = \operatorname{tr}\Sigma_0 + \|W\|_F^2 - 2\,\|\Sigma_0^{1/2} W\|_*,

the last form (nuclear norm) holding because the eigenvalues of
:math:`\Sigma_0^{1/2}WW^T\Sigma_0^{1/2}` are the squared singular values of
:math:`\Sigma_0^{1/2}W`. With :math:`\Sigma_0 = \sum_i \lambda_i \omega_i\omega_i^T` and
distinct eigenvalues, the critical points over rank-bounded matrices are the covariances
:math:`\Sigma_J = \sum_{i \in J}\lambda_i\omega_i\omega_i^T` for index sets :math:`|J| \le k`
(the paper's characterization): the gradient in :math:`W`,
:math:`2W - 2\Sigma_0^{1/2} U V^T` with :math:`\Sigma_0^{1/2}W = U S V^T`, vanishes exactly
there. The loss at :math:`\Sigma_J` is :math:`\sum_{i \notin J}\lambda_i`, so the global
minimum keeps the top ``k`` eigenvalues and every other critical point is a saddle.

Deviations: this module gives the critical points and values of the end-to-end loss; the
paper's convergence results (the smooth perturbed loss for rank-deficient iterates, step-size
conditions) are not reproduced here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from trainlab.errors import ConfigError, check_range


@dataclass(frozen=True)
class CriticalPoint:
    """One predicted critical point: the kept eigen-indices ``indices`` (into the
    descending eigenvalues), the covariance ``sigma`` and the loss value ``loss``."""

    indices: tuple[int, ...]
    sigma: np.ndarray
    loss: float


def _eig_desc(sigma0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(sigma0, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or not np.allclose(s, s.T, atol=1e-10):
        raise ConfigError(f"sigma0 must be a symmetric square matrix, got shape {s.shape}")
    lam, vec = np.linalg.eigh(s)
    if lam[0] < -1e-10 * max(1.0, lam[-1]):
        raise ConfigError(f"sigma0 must be positive semi-definite (smallest eigenvalue "
                          f"{lam[0]:.3g})")
    return np.clip(lam[::-1], 0.0, None), vec[:, ::-1]


def bures_wasserstein_loss(sigma0: np.ndarray, w: np.ndarray) -> float:
    r""":math:`B^2(\Sigma_0, WW^T) = \operatorname{tr}\Sigma_0 + \|W\|_F^2 -
    2\|\Sigma_0^{1/2}W\|_*` for a factor ``w`` of shape (n, k)."""
    lam, vec = _eig_desc(sigma0)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != lam.size:
        raise ConfigError(f"w must have shape (n, k) with n = {lam.size}, got {w.shape}")
    root = (vec * np.sqrt(lam)) @ vec.T
    nuclear = np.linalg.svd(root @ w, compute_uv=False).sum()
    return float(lam.sum() + (w**2).sum() - 2 * nuclear)


def bures_wasserstein_critical_points(sigma0: np.ndarray, k: int) -> list[CriticalPoint]:
    r"""Every predicted critical covariance :math:`\Sigma_J`, :math:`|J| \le k`, sorted by
    loss (the first is the global minimum: the top-``k`` eigen-truncation of
    :math:`\Sigma_0`). The number of points grows as :math:`\sum_{j\le k}\binom{n}{j}`, so
    ``n`` is limited to 20."""
    lam, vec = _eig_desc(sigma0)
    n = lam.size
    check_range("k", k, low=0, high=n, owner="bures_wasserstein_critical_points")
    if n > 20:
        raise ConfigError(f"bures_wasserstein_critical_points enumerates subsets; n = {n} > 20")
    if np.any(np.isclose(np.diff(lam), 0.0, atol=1e-12)):
        raise ConfigError("bures_wasserstein_critical_points needs distinct eigenvalues "
                          "(repeated ones give a continuum of critical points)")
    points = []
    for size in range(k + 1):
        for j in itertools.combinations(range(n), size):
            cols = list(j)
            sig = (vec[:, cols] * lam[cols]) @ vec[:, cols].T
            points.append(CriticalPoint(tuple(j), sig, float(lam.sum() - lam[cols].sum())))
    return sorted(points, key=lambda p: p.loss)


def bures_wasserstein_minimum(sigma0: np.ndarray, k: int) -> CriticalPoint:
    """The global minimizer over covariances of rank <= ``k``: keep the top ``k``
    eigenpairs; loss = the sum of the other eigenvalues. Works for any ``n``."""
    lam, vec = _eig_desc(sigma0)
    check_range("k", k, low=0, high=lam.size, owner="bures_wasserstein_minimum")
    sig = (vec[:, :k] * lam[:k]) @ vec[:, :k].T
    return CriticalPoint(tuple(range(k)), sig, float(lam[k:].sum()))
