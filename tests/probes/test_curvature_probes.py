"""Curvature probes against dense float64 Hessians, and the SGD linear-stability criterion
against a simulation of SGD around a quadratic minimum."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import assert_unchanged, batch, context, mlp, snapshot
from torch import nn
from torch.func import functional_call, hessian

from trainlab.analyses.sgd_stability import (
    critical_lr,
    per_example_hessians,
    second_moment_operator,
    stability_radius,
)
from trainlab.curvature import flatten, trainable_params, unflatten
from trainlab.probes.gradient_subspace import GradientSubspace
from trainlab.probes.hessian_spectrum import HessianSpectrum


def dense_hessian(model, x, y):
    params = trainable_params(model)

    def f(v):
        return F.cross_entropy(functional_call(model, unflatten(v, params), (x,)), y)

    return hessian(f)(flatten(params))


def test_hessian_spectrum_against_dense():
    model = mlp()
    x, y = batch()
    ctx = context(model, x, y, lr=0.3)
    snap = snapshot(model)
    probe = HessianSpectrum(k=3, trace_matvecs=99, frobenius_matvecs=100)
    out = probe.measure(ctx)
    assert_unchanged(model, snap)
    h = dense_hessian(model, x, y)
    ev = torch.linalg.eigvalsh(h).flip(0)
    for i in range(3):
        assert float(out[f"hessian/eig{i}"]) == pytest.approx(float(ev[i]), rel=1e-6, abs=1e-9)
    tr, fro = float(torch.trace(h)), float(h.norm())
    assert abs(out["hessian/trace"] - tr) <= 4 * out["hessian/trace_stderr"] + 1e-9
    assert abs(out["hessian/frobenius"] - fro) <= 4 * out["hessian/frobenius_stderr"] + 1e-9
    assert float(out["stability/gd"]) == pytest.approx(0.3 * float(ev[0]) / 2, rel=1e-6)
    assert out["stability/trace"] == pytest.approx(0.3 * out["hessian/trace"] / 2)
    ctx.cache.clear()
    probe.measure(ctx)  # warm start from the stored eigenvectors
    assert probe.state_dict()["v"].shape == (h.shape[0], 3)


def test_gradient_subspace_overlap_against_dense():
    model = mlp()
    x, y = batch()
    ctx = context(model, x, y)
    snap = snapshot(model)
    out = GradientSubspace(k=3).measure(ctx)
    assert_unchanged(model, snap)
    h = dense_hessian(model, x, y)
    _, vecs = torch.linalg.eigh(h)
    top = vecs[:, -3:]
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    ref = (top.T @ g).pow(2).sum() / g.pow(2).sum()
    assert float(out["grad_subspace_overlap"]) == pytest.approx(float(ref), rel=1e-5)


def quadratic_problem(n=6, d=3, seed=0):
    """Interpolating least squares 0.5 (w.x_i - y_i)^2 at its minimum: H_i = x_i x_i^T."""
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n, d, generator=g, dtype=torch.float64)
    xs[0] *= 3.0  # one sharp example: the SGD threshold differs from the GD one
    return xs, torch.einsum("ni,nj->nij", xs, xs)


def test_per_example_hessians_of_least_squares():
    xs, hs = quadratic_problem()
    model = nn.Linear(3, 1, bias=False).double()
    y = model(xs).detach()
    ref = per_example_hessians(model, lambda o, t: 0.5 * (o - t).pow(2).sum(-1).mean(), xs, y)
    torch.testing.assert_close(ref, hs)


def simulate(hs, lr, batch_size, steps, runs, seed=0):
    """Mean of theta theta^T over independent SGD runs on the random linear map."""
    g = torch.Generator().manual_seed(seed)
    n, d, _ = hs.shape
    theta = torch.randn(runs, d, generator=g, dtype=torch.float64)
    m0 = theta.T @ theta / runs
    for _ in range(steps):
        idx = torch.randint(0, n, (runs, batch_size), generator=g)
        hb = hs[idx].mean(1)
        theta = theta - lr * torch.einsum("rij,rj->ri", hb, theta)
    return m0, theta


def test_second_moment_operator_matches_simulated_moments():
    _, hs = quadratic_problem()
    lr, b, steps = 0.05, 2, 4
    m0, theta = simulate(hs, lr, b, steps, runs=40000)
    t = second_moment_operator(hs, lr, b)
    m = m0.reshape(-1)
    for _ in range(steps):
        m = t @ m
    emp = theta.T @ theta / theta.shape[0]
    torch.testing.assert_close(emp, m.reshape(3, 3), rtol=0.03, atol=0.03)


def test_linear_stability_criterion_against_simulation():
    """Below the critical learning rate the mean square of SGD decays; above it grows; the
    SGD threshold is below the GD threshold 2 / lambda_max(H)."""
    _, hs = quadratic_problem()
    b = 2
    lr_c = critical_lr(hs, b)
    lam = float(torch.linalg.eigvalsh(hs.mean(0)).max())
    assert lr_c < 2.0 / lam * 0.99
    assert stability_radius(hs, 0.9 * lr_c, b) < 1 < stability_radius(hs, 1.1 * lr_c, b)
    for factor, grows in ((0.8, False), (1.25, True)):
        _, theta = simulate(hs, factor * lr_c, b, steps=300, runs=4000, seed=1)
        ms = float(theta.pow(2).sum(1).mean())
        assert (ms > 3.0) == grows, (factor, ms)
