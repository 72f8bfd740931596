"""DProxSGT (row 117): equals a plain per-worker loop of its recursion, reaches consensus on
a ring, and (with exact local gradients) converges to the centralized proximal solution
despite heterogeneous data (gradient tracking)."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim.procedures.dproxsgt import dproxsgt, ring_mixing_matrix, soft_threshold

from .._problems import decentralized_grad_fn, decentralized_least_squares

N, D = 6, 5


def _problem():
    return decentralized_least_squares(N, D)


_grad_fn = decentralized_grad_fn


def test_equals_per_worker_reference_loop():
    a, b = _problem()
    w = ring_mixing_matrix(N)
    lam, eta = 0.1, 0.05
    x0 = torch.randn(N, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    xs = [x0[i].clone() for i in range(N)]
    ys = [torch.zeros(D, dtype=torch.float64) for _ in range(N)]
    gp = [torch.zeros(D, dtype=torch.float64) for _ in range(N)]
    for _ in range(10):
        gs = [a[i].T @ (a[i] @ xs[i] - b[i]) / 8 for i in range(N)]
        half_y = [ys[i] + gs[i] - gp[i] for i in range(N)]
        ys = [sum(w[i, j] * half_y[j] for j in range(N)) for i in range(N)]
        z = [xs[i] - eta * ys[i] for i in range(N)]
        half_x = [torch.sign(v) * torch.clamp(v.abs() - eta * lam, min=0) for v in z]
        xs = [sum(w[i, j] * half_x[j] for j in range(N)) for i in range(N)]
        gp = gs
    res = dproxsgt(x0, _grad_fn(a, b), w, step=eta, iterations=10, prox=soft_threshold(lam))
    torch.testing.assert_close(res.x, torch.stack(xs), rtol=1e-12, atol=1e-13)


def test_consensus_and_centralized_solution_on_a_ring():
    a, b = _problem()
    lam, eta = 0.1, 0.05
    res = dproxsgt(torch.zeros(N, D, dtype=torch.float64), _grad_fn(a, b),
                   ring_mixing_matrix(N), step=eta, iterations=3000, prox=soft_threshold(lam))
    assert res.consensus[-1] < 1e-20 < res.consensus[5]
    # centralized proximal gradient on (1/n) sum_i f_i + lam |x|_1
    af, bf = a.reshape(-1, D), b.reshape(-1)
    x = torch.zeros(D, dtype=torch.float64)
    for _ in range(5000):
        z = x - eta * af.T @ (af @ x - bf) / af.shape[0]
        x = torch.sign(z) * torch.clamp(z.abs() - eta * lam, min=0)
    torch.testing.assert_close(res.x, x.expand(N, D), rtol=1e-8, atol=1e-9)
    # tracked gradients average the current local gradients
    torch.testing.assert_close(res.y.mean(0), _grad_fn(a, b)(res.x, 0).mean(0))


def test_validation():
    a, b = _problem()
    with pytest.raises(ConfigError, match="doubly stochastic"):
        dproxsgt(torch.zeros(N, D), _grad_fn(a, b), torch.ones(N, N), step=0.1, iterations=1)
    with pytest.raises(ConfigError, match="mixing"):
        dproxsgt(torch.zeros(N, D), _grad_fn(a, b), torch.eye(3), step=0.1, iterations=1)
    with pytest.raises(ConfigError, match="self_weight"):
        ring_mixing_matrix(4, self_weight=1.0)
