"""Bures-Wasserstein critical points: the loss against scipy's matrix square roots, zero
gradient at every predicted point (finite differences), saddles elsewhere, and gradient
descent on a deep linear factor reaching the predicted minimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm

from trainlab.errors import ConfigError
from trainlab.theory.bures_wasserstein import (
    bures_wasserstein_critical_points,
    bures_wasserstein_loss,
    bures_wasserstein_minimum,
)


def _target(n, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.sort(rng.uniform(0.2, 3.0, n))[::-1]
    return (q * lam) @ q.T, lam, q


def _psd_sqrt(m):
    lam, vec = np.linalg.eigh((m + m.T) / 2)
    lam = np.where(lam > 1e-10 * lam.max(), lam, 0.0)  # round-off zeros stay exactly zero
    return (vec * np.sqrt(lam)) @ vec.T


def _reference(sigma0, w):
    """The defining formula with explicit matrix square roots (scipy's for the full-rank
    target, an eigendecomposition for the rank-deficient inner matrix)."""
    r = np.real(sqrtm(sigma0))
    return np.trace(sigma0) + np.trace(w @ w.T) - 2 * np.trace(_psd_sqrt(r @ w @ w.T @ r))


def test_loss_matches_sqrtm_formula():
    sigma0, _, _ = _target(6, 0)
    rng = np.random.default_rng(1)
    for k in (1, 3, 6):
        w = rng.normal(size=(6, k))
        assert bures_wasserstein_loss(sigma0, w) == pytest.approx(_reference(sigma0, w),
                                                                  rel=1e-7, abs=1e-9)


def _factor(point, k, rng):
    """A factor W (n x k) with W W^T = point.sigma (random rotation of the columns)."""
    lam, vec = np.linalg.eigh(point.sigma)
    keep = lam > 1e-12
    f = vec[:, keep] * np.sqrt(lam[keep])
    w = np.zeros((point.sigma.shape[0], k))
    w[:, : f.shape[1]] = f
    q, _ = np.linalg.qr(rng.normal(size=(k, k)))
    return w @ q


def test_predicted_points_are_critical_and_values_match():
    sigma0, lam, _ = _target(5, 2)
    k, rng, h = 2, np.random.default_rng(3), 1e-6
    points = bures_wasserstein_critical_points(sigma0, k)
    assert len(points) == 1 + 5 + 10
    assert points[0].loss == pytest.approx(lam[2:].sum())
    for p in points:
        if len(p.indices) < k:
            continue  # rank-deficient points: the loss is not differentiable in W there
        w = _factor(p, k, rng)
        assert bures_wasserstein_loss(sigma0, w) == pytest.approx(p.loss, abs=1e-9)
        grad = np.zeros_like(w)
        for i in range(w.shape[0]):
            for j in range(k):
                e = np.zeros_like(w)
                e[i, j] = h
                grad[i, j] = (_reference(sigma0, w + e) - _reference(sigma0, w - e)) / (2 * h)
        assert np.abs(grad).max() < 1e-5


def test_non_minimal_points_are_saddles():
    """Rotating a kept eigenvector toward a dropped larger one lowers the loss."""
    sigma0, lam, q = _target(4, 4)
    p = next(p for p in bures_wasserstein_critical_points(sigma0, 2) if p.indices == (1, 2))
    w = np.stack([q[:, 1] * np.sqrt(lam[1]), q[:, 2] * np.sqrt(lam[2])], axis=1)
    t = 1e-2
    moved = w.copy()
    moved[:, 1] = (np.cos(t) * q[:, 2] + np.sin(t) * q[:, 0]) * np.sqrt(lam[2])
    assert bures_wasserstein_loss(sigma0, moved) < p.loss - 1e-8


def test_gradient_descent_on_deep_factor_reaches_minimum():
    sigma0, lam, _ = _target(6, 5)
    k = 3
    g = torch.Generator().manual_seed(0)
    ws = [torch.randn(k, k, generator=g, dtype=torch.float64) * 0.5 for _ in range(2)]
    ws.append(torch.randn(6, k, generator=g, dtype=torch.float64) * 0.5)
    for w in ws:
        w.requires_grad_(True)
    lam_t, vec_t = torch.linalg.eigh(torch.tensor(sigma0))
    root = (vec_t * lam_t.clamp_min(0).sqrt()) @ vec_t.T
    opt = torch.optim.SGD(ws, lr=0.02)
    for _ in range(4000):
        w = ws[2] @ ws[1] @ ws[0]
        loss = lam_t.sum() + (w**2).sum() - 2 * torch.linalg.svdvals(root @ w).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    best = bures_wasserstein_minimum(sigma0, k)
    w = (ws[2] @ ws[1] @ ws[0]).detach().numpy()
    assert bures_wasserstein_loss(sigma0, w) == pytest.approx(best.loss, abs=1e-6)
    np.testing.assert_allclose(w @ w.T, best.sigma, atol=1e-4)


def test_bad_inputs_raise():
    with pytest.raises(ConfigError, match="symmetric"):
        bures_wasserstein_loss(np.ones((2, 3)), np.ones((2, 1)))
    with pytest.raises(ConfigError, match="semi-definite"):
        bures_wasserstein_minimum(-np.eye(2), 1)
    with pytest.raises(ConfigError, match="distinct"):
        bures_wasserstein_critical_points(np.eye(3), 1)
    with pytest.raises(ConfigError, match="'k'"):
        bures_wasserstein_minimum(np.eye(2), 3)
