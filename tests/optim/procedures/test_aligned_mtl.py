"""Aligned-MTL against the closed form from the SVD of the task-gradient matrix."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim.procedures.aligned_mtl import aligned_mtl, aligned_mtl_gradients


def _grads(t=3, n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t, n, generator=g, dtype=torch.float64) \
        * torch.tensor([[1.0], [5.0], [0.2]], dtype=torch.float64)[:t]


def test_aligned_gradients_equal_sigma_min_u_vt_and_are_perfectly_conditioned():
    grads = _grads()
    res = aligned_mtl(grads)
    u, s, vh = torch.linalg.svd(grads.T, full_matrices=False)
    expected = s[-1] * u @ vh
    torch.testing.assert_close(res.aligned, expected)
    gram = res.aligned.T @ res.aligned
    torch.testing.assert_close(gram, s[-1] ** 2 * torch.eye(3, dtype=torch.float64))
    assert torch.linalg.cond(res.aligned) == pytest.approx(1.0)
    torch.testing.assert_close(res.direction, expected.sum(1))
    torch.testing.assert_close(grads.T @ res.task_weights, res.direction)
    w = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    torch.testing.assert_close(aligned_mtl(grads, w).direction, expected @ w)
    for scale, target in (("median", s.median()), ("rmse", (s**2).mean().sqrt())):
        torch.testing.assert_close(aligned_mtl(grads, scale=scale).aligned, target * u @ vh)


def test_dependent_tasks_are_aligned_in_their_span():
    base = _grads(2)
    grads = torch.cat([base, base[:1] * 2.0])  # third task = 2 x first
    res = aligned_mtl(grads)
    assert res.rank == 2
    u, s, vh = torch.linalg.svd(grads.T, full_matrices=False)
    expected = s[1] * u[:, :2] @ vh[:2]
    torch.testing.assert_close(res.aligned, expected)


def test_per_parameter_helper_matches_flat_version_and_leaves_grad():
    g = torch.Generator().manual_seed(3)
    w = torch.randn(3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(5, 2, generator=g, dtype=torch.float64)
    out = x @ w.T + b
    losses = [out[:, k].pow(2).mean() * (k + 1) for k in range(3)]
    got = aligned_mtl_gradients(losses, [w, b])
    rows = torch.stack([torch.cat([d.flatten() for d in torch.autograd.grad(
        loss, [w, b], retain_graph=True)]) for loss in losses])
    flat = aligned_mtl(rows).direction
    torch.testing.assert_close(torch.cat([got[0].flatten(), got[1]]), flat)
    assert w.grad is None and b.grad is None


def test_validation():
    with pytest.raises(ConfigError, match="shape"):
        aligned_mtl(torch.zeros(3))
    with pytest.raises(ConfigError, match="scale"):
        aligned_mtl(_grads(), scale="max")
    with pytest.raises(ConfigError, match="zero"):
        aligned_mtl(torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="weights"):
        aligned_mtl(_grads(), torch.ones(2, dtype=torch.float64))
