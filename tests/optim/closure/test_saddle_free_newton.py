"""Saddle-free Newton escapes a saddle where gradient descent stalls; exact |H|^-1 g."""

from __future__ import annotations

import torch

from trainlab.curvature import MatrixOperator
from trainlab.optim.saddle_free_newton import SaddleFreeNewton, saddle_free_direction


def _saddle_closure(w):
    def closure():
        w.grad = None
        loss = 0.5 * (w[0] ** 2 - 0.01 * w[1] ** 2)  # a weak negative direction
        loss.backward()
        return loss

    return closure


def test_escapes_saddle_where_gd_stalls():
    start = torch.tensor([1.0, 1e-6], dtype=torch.float64)
    w = torch.nn.Parameter(start.clone())
    opt = SaddleFreeNewton([w], lr=0.5, damping=1e-8, krylov_dim=2)
    for _ in range(25):
        opt.step(_saddle_closure(w))
    # |H|^-1 g = (x, -y): x halves, y grows by 1.5 per step
    torch.testing.assert_close(w.detach(), torch.tensor([0.5 ** 25, 1e-6 * 1.5 ** 25],
                                                        dtype=torch.float64), rtol=1e-4, atol=0)
    v = torch.nn.Parameter(start.clone())
    gd = torch.optim.SGD([v], lr=0.5)
    for _ in range(25):
        _saddle_closure(v)()
        gd.step()
    # GD (at its largest useful lr for the x direction) grows y by only 1.005 per step
    torch.testing.assert_close(v.detach(), torch.tensor([0.5 ** 25, 1e-6 * 1.005 ** 25],
                                                        dtype=torch.float64))
    assert abs(w[1].item()) > 1e4 * abs(v[1].item())


def test_direction_matches_dense_absolute_hessian_inverse():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    evals = torch.tensor([-3.0, -0.5, 0.2, 1.0, 2.0, 5.0], dtype=torch.float64)
    h = q @ torch.diag(evals) @ q.T
    grad = torch.randn(6, generator=g, dtype=torch.float64)
    ref = q @ torch.diag(1 / (evals.abs() + 0.1)) @ q.T @ grad
    got = saddle_free_direction(MatrixOperator(h), grad, krylov_dim=6, damping=0.1)
    torch.testing.assert_close(got, ref)
