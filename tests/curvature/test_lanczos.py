"""Lanczos against eigvalsh on known matrices and on dense Hessians of tiny nets."""

from __future__ import annotations

import pytest
import torch
from curvature_reference import DT, classification_batch, dense_hessian, mlp
from torch import nn

from trainlab.curvature import HessianOperator, lanczos
from trainlab.errors import ConfigError


def wishart(n: int = 60, m: int = 80, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, m, generator=g, dtype=DT)
    return a @ a.T / m - 0.5 * torch.eye(n, dtype=DT)  # indefinite


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
def test_wishart_matrix_against_eigvalsh(which):
    a = wishart()
    res = lanczos(a, k=4, which=which, tol=1e-10, generator=gen())
    ev = torch.linalg.eigvalsh(a)
    ref = {"LA": ev.flip(0)[:4], "SA": ev[:4],
           "LM": ev[torch.argsort(ev.abs(), descending=True)][:4]}[which]
    assert res.all_converged
    assert torch.allclose(res.values, ref, rtol=1e-8, atol=0)
    true_res = (a @ res.vectors - res.vectors * res.values).norm(dim=0)
    assert torch.allclose(res.residuals, true_res, rtol=1e-3, atol=1e-12)
    assert torch.allclose(res.vectors.T @ res.vectors, torch.eye(4, dtype=DT), atol=1e-10)
    assert res.matvecs == res.iterations <= 60


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_tiny_net_hessian_eigenvalues_to_1e_8(which):
    model, (x, y) = mlp(), classification_batch()
    op = HessianOperator(model, nn.CrossEntropyLoss(), (x, y))
    ev = torch.linalg.eigvalsh(dense_hessian(model, nn.CrossEntropyLoss(), x, y))
    ref = ev.flip(0)[:3] if which == "LA" else ev[:3]
    res = lanczos(op, k=3, which=which, tol=1e-9, generator=gen(1))
    assert res.all_converged
    assert ((res.values - ref).abs() <= 1e-8 * ref.abs()).all()


def test_warm_start_from_previous_eigenvector_needs_fewer_products():
    model, (x, y) = mlp(), classification_batch()
    op = HessianOperator(model, nn.CrossEntropyLoss(), (x, y))
    cold = lanczos(op, k=1, tol=1e-6, generator=gen(0))
    with torch.no_grad():  # one small step later
        for p in model.parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=gen(3), dtype=DT))
    op2 = HessianOperator(model, nn.CrossEntropyLoss(), (x, y))
    warm = lanczos(op2, k=1, tol=1e-6, v0=cold.vectors)
    fresh = lanczos(op2, k=1, tol=1e-6, generator=gen(0))
    assert warm.all_converged and fresh.all_converged
    assert torch.allclose(warm.values, fresh.values, rtol=1e-8)
    assert warm.matvecs < fresh.matvecs


def test_low_rank_operator_breakdown_restarts():
    g = gen(4)
    u = torch.linalg.qr(torch.randn(30, 3, generator=g, dtype=DT))[0]
    a = u @ torch.diag(torch.tensor([5.0, 3.0, 1.0], dtype=DT)) @ u.T  # rank 3
    res = lanczos(a, k=5, tol=1e-10, generator=g)
    expected = torch.tensor([5.0, 3.0, 1.0, 0.0, 0.0], dtype=DT)
    assert torch.allclose(res.values, expected, atol=1e-10)
    assert res.all_converged


def test_same_generator_same_result_and_errors():
    a = wishart(20, 30)
    r1 = lanczos(a, k=2, tol=1e-4, generator=gen(7))
    r2 = lanczos(a, k=2, tol=1e-4, generator=gen(7))
    assert torch.equal(r1.values, r2.values) and torch.equal(r1.vectors, r2.vectors)
    with pytest.raises(ConfigError, match="'k'"):
        lanczos(a, k=21)
    with pytest.raises(ConfigError, match="which"):
        lanczos(a, which="BE")
    with pytest.raises(ConfigError, match="max_iter"):
        lanczos(a, k=3, max_iter=2)
    with pytest.raises(ConfigError, match="v0"):
        lanczos(a, v0=torch.zeros(20, dtype=DT))
    with pytest.raises(ConfigError, match="tol"):
        lanczos(a, tol=0.0)


def test_eig_tol_bounds_the_eigenvalue_error_with_fewer_products():
    """The gap-theorem stop (residual^2 / gap) reaches a target eigenvalue accuracy before
    the residual itself does, and the eigenvalue is as accurate as asked."""
    ev = torch.cat([torch.tensor([3.0], dtype=DT), torch.linspace(0.0, 2.0, 199, dtype=DT)])
    a = torch.diag(ev)
    by_residual = lanczos(a, k=1, tol=1e-8, generator=gen(2))
    by_value = lanczos(a, k=1, tol=1e-12, eig_tol=1e-8, generator=gen(2))
    assert by_value.all_converged
    assert abs(by_value.values[0].item() - 3.0) <= 1e-8 * 3.0
    assert by_value.matvecs < by_residual.matvecs
    with pytest.raises(ConfigError, match="eig_tol"):
        lanczos(a, k=1, eig_tol=0.0)


def test_early_stop_returns_the_ritz_pairs_of_its_last_test_bitwise():
    """A run that stops on convergence reuses the Ritz pairs of its last test; they equal,
    bit for bit, those of a run capped at the same Krylov dimension (which computes them
    after the loop)."""
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(60, 60, generator=g, dtype=torch.float64))
    a = q @ torch.diag(torch.linspace(0.0, 1.0, 60, dtype=torch.float64) ** 3) @ q.T
    for k, kw in ((1, {}), (2, {"gap_tol": 0.1, "min_iter": 5}), (1, {"eig_tol": 1e-6})):
        early = lanczos(a, k=k, tol=1e-5, generator=torch.Generator().manual_seed(0), **kw)
        assert early.matvecs < 60 and bool(early.converged.all())
        capped = lanczos(a, k=k, tol=1e-5, max_iter=early.matvecs,
                         generator=torch.Generator().manual_seed(0), **kw)
        for name in ("values", "vectors", "residuals", "converged"):
            assert torch.equal(getattr(early, name), getattr(capped, name)), name
