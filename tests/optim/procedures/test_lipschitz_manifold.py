"""Lipschitz-constrained learning on a manifold sample graph (row 52): the graph gradient
estimate is exact for linear functions along the manifold, the dual updates follow the
Lagrangian, and primal-dual training fits the labels with a far smaller worst-case local
gradient than an unconstrained fit, with L tracking it and the duals on the steepest
samples."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.optim.procedures.lipschitz_manifold import (
    LipschitzManifold,
    knn_graph,
    local_gradient_sq,
)


def _circle(n=120, labelled=16):
    g = torch.Generator().manual_seed(0)
    t = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    x = torch.stack([torch.cos(t), torch.sin(t)], 1)
    y = torch.where(t[:labelled] < math.pi, 1.0, -1.0).double()[:, None]
    return x, y


def _mlp():
    g = torch.Generator().manual_seed(1)
    m = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1)).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) / p.shape[-1] ** 0.5)
    return m


def mse(out, y):
    return ((out - y) ** 2).mean()


def test_graph_gradient_is_exact_for_linear_functions_on_a_line():
    u = torch.tensor([1.0, 2.0, -2.0], dtype=torch.float64) / 3
    s = torch.rand(30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = s[:, None] * u
    a = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    graph = knn_graph(x, k=4)
    assert set(zip(graph.rows.tolist(), graph.cols.tolist())) == set(
        zip(graph.cols.tolist(), graph.rows.tolist()))  # symmetric
    torch.testing.assert_close(local_gradient_sq(x @ a, graph),
                               torch.full((30,), float(a @ u) ** 2, dtype=torch.float64))


def test_dual_updates_follow_the_lagrangian():
    x, y = _circle()
    model = _mlp()
    pd = LipschitzManifold(model, x, 16, mse, epsilon=0.1, k=6, lr=1e-2, dual_lr=0.2)
    with torch.no_grad():
        out = model(x)
        g0, loss0 = local_gradient_sq(out, pd.graph), mse(out[:16], y)
    pd.step(y)
    torch.testing.assert_close(pd.duals, (1 + 0.2 * g0).clamp_min(0))  # L starts at 0
    torch.testing.assert_close(pd.loss_dual, (1 + 0.2 * (loss0 - 0.1)).clamp_min(0))
    assert float(pd.bound) == 0.0  # mean dual 1: no pressure on L at the first step


def test_primal_dual_fit_is_globally_smooth():
    x, y = _circle()
    model = _mlp()
    pd = LipschitzManifold(model, x, 16, mse, epsilon=0.1, k=6, lr=3e-2, dual_lr=0.1)
    for _ in range(400):
        report = pd.step(y)
    plain = _mlp()
    opt = torch.optim.Adam(plain.parameters(), lr=3e-2)
    for _ in range(400):
        opt.zero_grad()
        mse(plain(x[:16]), y).backward()
        opt.step()
    with torch.no_grad():
        g = local_gradient_sq(model(x), pd.graph)
        g_plain = local_gradient_sq(plain(x), pd.graph)
    assert report["loss"] < 0.25  # near epsilon, from 2.3
    assert float(g.max()) < 0.1 * float(g_plain.max())
    assert abs(float(pd.bound) - float(g.max())) < 0.35 * float(g.max())  # L tracks max g
    assert abs(report["dual_mass"] - 1) < 0.2
    assert float(g[pd.duals > 0].min()) > 0.5 * float(g.max())  # duals on the steepest points
