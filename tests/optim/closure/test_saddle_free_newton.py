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


def _quartic(w):
    """A saddle at 0 (Hessian diag(1, -1, 2)), minima at y = +-1; an inflection at y^2 = 1/3
    where the quadratic model is useless."""
    return 0.5 * w[0] ** 2 - 0.5 * w[1] ** 2 + 0.25 * w[1] ** 4 + w[2] ** 2 + 0.1 * w[0] * w[2]


def _closure(f, w):
    def closure():
        w.grad = None
        loss = f(w)
        loss.backward()
        return loss

    return closure


def _reference_algorithm1(f, w, grid, steps, inner, lr=1.0):
    """Algorithm 1 of Dauphin et al. 2014 with the Krylov subspace the whole space (k = d):
    dense float64 eigendecomposition, every damping of the grid tried, lowest loss kept."""
    grid = torch.tensor(grid, dtype=torch.float64)
    for _ in range(steps):
        evals, evecs = torch.linalg.eigh(torch.func.hessian(f)(w))
        for _ in range(inner):
            coeff = evecs.T @ torch.func.grad(f)(w)
            cands = [w - lr * evecs @ (coeff / (evals.abs() + lam)) for lam in grid]
            w = min(cands, key=lambda c: float(f(c)))
    return w


def test_damping_search_matches_dense_reference_of_algorithm_1():
    start = torch.tensor([0.8, 0.3, -0.5], dtype=torch.float64)
    grid = (1.0, 1e-1, 1e-2, 1e-3)
    for inner in (1, 2):
        w = torch.nn.Parameter(start.clone())
        opt = SaddleFreeNewton([w], krylov_dim=3, damping_grid=grid, subspace_steps=inner)
        for _ in range(4):
            opt.step(_closure(_quartic, w))
        ref = _reference_algorithm1(_quartic, start.clone(), grid, 4, inner)
        torch.testing.assert_close(w.detach(), ref)
        assert float(_quartic(ref)) < -0.2  # reached a basin of a minimum (f* = -0.25 - ...)


def test_damping_search_avoids_the_overshoot_of_a_fixed_small_damping():
    # at y = 0.58 the curvature in y is ~0.009 while the slope is ~-0.385: a Newton step with
    # damping 1e-3 jumps to y ~ 38; the search takes a large damping and lands near y = 1
    start = torch.tensor([0.0, 0.58, 0.0], dtype=torch.float64)
    fixed = torch.nn.Parameter(start.clone())
    SaddleFreeNewton([fixed], damping=1e-3, krylov_dim=3).step(_closure(_quartic, fixed))
    searched = torch.nn.Parameter(start.clone())
    opt = SaddleFreeNewton([searched], krylov_dim=3)
    opt.step(_closure(_quartic, searched))
    assert float(_quartic(fixed.detach())) > 1e4
    assert float(_quartic(searched.detach())) < -0.2
    assert opt.state[searched]["damping"] >= 0.1
    ref = _reference_algorithm1(_quartic, start.clone(), opt.defaults["damping_grid"], 1, 1)
    torch.testing.assert_close(searched.detach(), ref)
