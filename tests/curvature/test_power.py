"""Power iteration (trainlab.curvature.top_eigenvalue) against dense float64 eigensolves, in
the solvers' common result type."""

from __future__ import annotations

import pytest
import torch

from trainlab.curvature import EigenResult, top_eigenvalue


def test_finds_top_algebraic_eigenvalue_when_dominant_is_negative():
    a = torch.diag(torch.tensor([-10.0, -3.0, 1.0, 2.5], dtype=torch.float64))
    res = top_eigenvalue(lambda v: a @ v, 4, max_iter=2000, tol=1e-14,
                         generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert isinstance(res, EigenResult)
    assert res.values[0].item() == pytest.approx(2.5, rel=1e-8) and res.all_converged
    assert res.matvecs == res.iterations


def test_value_vector_and_residual_match_a_dense_eigensolve():
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    a = q @ torch.diag(torch.linspace(-1.0, 4.0, 12, dtype=torch.float64)) @ q.T
    res = top_eigenvalue(lambda v: a @ v, 12, max_iter=500, tol=1e-13, generator=g,
                         dtype=torch.float64)
    assert res.values[0].item() == pytest.approx(4.0, rel=1e-10)
    u = res.vectors[:, 0]
    assert abs(torch.dot(u, q[:, -1]).item()) == pytest.approx(1.0, abs=1e-6)
    assert res.residuals[0].item() < 1e-4


def test_unconverged_run_reports_its_residual():
    g = torch.Generator().manual_seed(4)
    a = torch.diag(torch.tensor([1.0, 0.99, 0.5], dtype=torch.float64))
    res = top_eigenvalue(lambda v: a @ v, 3, max_iter=3, tol=1e-14, generator=g,
                         dtype=torch.float64)
    assert not res.all_converged and res.iterations == 3
    # the residual is ||A u - value u|| for the iterate whose Rayleigh quotient is the value:
    # positive here and bounded by the spectral spread
    assert 0.0 < res.residuals[0].item() <= 0.5


def test_a_non_finite_product_raises_not_finite_error_naming_the_product():
    import math as _math

    from trainlab.errors import NotFiniteError

    a = torch.diag(torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64))
    calls = {"n": 0}

    def matvec(v):
        calls["n"] += 1
        out = a @ v
        return out * _math.nan if calls["n"] == 3 else out

    with pytest.raises(NotFiniteError, match="product 3"):
        top_eigenvalue(matvec, 3, dtype=torch.float64, max_iter=50, tol=1e-12,
                       generator=torch.Generator().manual_seed(0))
