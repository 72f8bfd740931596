"""Euler-Maruyama on the OU process is stable only for dt < 2/lambda_max: ou_solve refuses an
unstable dt up front and stops a diverging integration with a clear error."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim.thermodynamic_solve import largest_eigenvalue_estimate, ou_solve

A = torch.diag(torch.tensor([1.0, 100.0], dtype=torch.float64))


def matvec(v):
    return A @ v


def test_stable_dt_solves_the_system():
    b = torch.tensor([1.0, 1.0], dtype=torch.float64)
    x = ou_solve(matvec, b, time=40.0, dt=0.015)  # 2/100 = 0.02
    torch.testing.assert_close(x, torch.linalg.solve(A, b), rtol=1e-8, atol=1e-10)


def test_unstable_dt_is_refused_before_integrating():
    b = torch.tensor([1.0, 1.0], dtype=torch.float64)
    with pytest.raises(ConfigError, match="'dt'.*2/lambda_max"):
        ou_solve(matvec, b, dt=0.05)


def test_divergence_missed_by_the_estimate_raises():
    # b has no component on the stiff direction, so the power estimate sees only lambda = 1;
    # the start x0 does, and grows as (1 - 0.05 * 100)^k
    b = torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert largest_eigenvalue_estimate(matvec, b, 10) == pytest.approx(1.0)
    x0 = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(ConfigError, match="diverge"):
        ou_solve(matvec, b, x0=x0, dt=0.05)


def test_power_estimate_is_a_lower_bound_that_converges():
    b = torch.tensor([1.0, 1.0], dtype=torch.float64)
    est = largest_eigenvalue_estimate(matvec, b, 10)
    assert est <= 100.0 and est == pytest.approx(100.0, rel=1e-6)
