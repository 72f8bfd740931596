"""CDProxSGT (row 117, compressed DProxSGT): equals a plain per-worker loop of its recursion
(top-k compressed differences against auxiliary copies), equals DProxSGT with identity
compressors and unit consensus steps, and with top-k reaches consensus on a ring at the
centralized proximal solution."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim.procedures.dproxsgt import (
    cdproxsgt,
    dproxsgt,
    ring_mixing_matrix,
    soft_threshold,
    top_k,
)

from .._problems import decentralized_grad_fn, decentralized_least_squares

N, D = 6, 5


def _problem():
    return decentralized_least_squares(N, D)


_grad_fn = decentralized_grad_fn


def _topk_vec(v, k):  # one worker's message: keep the k largest |entries|, by sorting
    order = sorted(range(len(v)), key=lambda j: -abs(float(v[j])))[:k]
    out = torch.zeros_like(v)
    for j in order:
        out[j] = v[j]
    return out


def test_top_k_keeps_largest_entries_per_row():
    m = torch.tensor([[1.0, -5.0, 3.0, 0.5], [-2.0, 0.1, 0.2, 4.0]])
    torch.testing.assert_close(top_k(2)(m), torch.tensor([[0.0, -5.0, 3.0, 0.0],
                                                         [-2.0, 0.0, 0.0, 4.0]]))
    torch.testing.assert_close(top_k(9)(m), m)


def test_equals_per_worker_reference_loop():
    a, b = _problem()
    w = ring_mixing_matrix(N)
    lam, eta, gx, gy, k = 0.1, 0.05, 0.6, 0.4, 2
    x0 = torch.randn(N, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z = torch.zeros(D, dtype=torch.float64)
    xs = [x0[i].clone() for i in range(N)]
    ys, gp, xh, yh = ([z.clone() for _ in range(N)] for _ in range(4))
    for _ in range(12):
        gs = [a[i].T @ (a[i] @ xs[i] - b[i]) / 8 for i in range(N)]
        ys = [ys[i] + gs[i] - gp[i] for i in range(N)]
        yh = [yh[i] + _topk_vec(ys[i] - yh[i], k) for i in range(N)]  # each worker's copy
        ys = [ys[i] + gy * sum(w[i, j] * (yh[j] - yh[i]) for j in range(N)) for i in range(N)]
        half = [xs[i] - eta * ys[i] for i in range(N)]
        half = [torch.sign(v) * torch.clamp(v.abs() - eta * lam, min=0) for v in half]
        xh = [xh[i] + _topk_vec(half[i] - xh[i], k) for i in range(N)]
        xs = [half[i] + gx * sum(w[i, j] * (xh[j] - xh[i]) for j in range(N)) for i in range(N)]
        gp = gs
    res = cdproxsgt(x0, _grad_fn(a, b), w, step=eta, iterations=12, gamma_x=gx, gamma_y=gy,
                    compressor_x=top_k(k), compressor_y=top_k(k), prox=soft_threshold(lam))
    torch.testing.assert_close(res.x, torch.stack(xs), rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(res.y, torch.stack(ys), rtol=1e-12, atol=1e-13)


def test_identity_compressor_is_dproxsgt():
    a, b = _problem()
    w = ring_mixing_matrix(N)
    x0 = torch.randn(N, D, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    kw = dict(step=0.05, iterations=40, prox=soft_threshold(0.1))
    ref = dproxsgt(x0, _grad_fn(a, b), w, **kw)
    res = cdproxsgt(x0, _grad_fn(a, b), w, gamma_x=1.0, gamma_y=1.0, **kw)
    torch.testing.assert_close(res.x, ref.x, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(res.y, ref.y, rtol=1e-12, atol=1e-13)
    assert res.consensus == pytest.approx(ref.consensus, rel=1e-9, abs=1e-25)


def test_top_k_consensus_and_centralized_solution_on_a_ring():
    a, b = _problem()
    lam, eta = 0.1, 0.05
    res = cdproxsgt(torch.zeros(N, D, dtype=torch.float64), _grad_fn(a, b),
                    ring_mixing_matrix(N), step=eta, iterations=4000, gamma_x=0.5, gamma_y=0.5,
                    compressor_x=top_k(2), compressor_y=top_k(2), prox=soft_threshold(lam))
    assert res.consensus[-1] < 1e-18 < res.consensus[5]
    af, bf = a.reshape(-1, D), b.reshape(-1)
    x = torch.zeros(D, dtype=torch.float64)
    for _ in range(5000):  # centralized proximal gradient on (1/n) sum_i f_i + lam |x|_1
        zc = x - eta * af.T @ (af @ x - bf) / af.shape[0]
        x = torch.sign(zc) * torch.clamp(zc.abs() - eta * lam, min=0)
    torch.testing.assert_close(res.x, x.expand(N, D), rtol=1e-7, atol=1e-8)


def test_validation():
    a, b = _problem()
    with pytest.raises(ConfigError, match="gamma_x"):
        cdproxsgt(torch.zeros(N, D), _grad_fn(a, b), ring_mixing_matrix(N), step=0.1,
                  iterations=1, gamma_x=0.0, gamma_y=0.5)
    with pytest.raises(ConfigError, match="doubly stochastic"):
        cdproxsgt(torch.zeros(N, D), _grad_fn(a, b), torch.ones(N, N), step=0.1, iterations=1,
                  gamma_x=0.5, gamma_y=0.5)
    with pytest.raises(ConfigError, match="k"):
        top_k(0)
