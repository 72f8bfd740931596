"""Non-differentiable L1 (row 73): ISTA against the LASSO closed form (orthogonal design) and
the KKT conditions (general design); the objective and the check by hand."""

from __future__ import annotations

import math

import torch

from trainlab.phenomena.kumar2024_nondifferentiable import (
    NonDifferentiableL1,
    ista,
    lasso_objective,
    soft_threshold,
)


def test_soft_threshold():
    z = torch.tensor([-3.0, -0.5, 0.0, 0.2, 2.0])
    torch.testing.assert_close(soft_threshold(z, 1.0), torch.tensor([-2.0, 0.0, 0.0, 0.0, 1.0]))


def test_ista_matches_the_closed_form_for_an_orthogonal_design():
    g = torch.Generator().manual_seed(0)
    n, p = 16, 6
    q, _ = torch.linalg.qr(torch.randn(n, p, generator=g, dtype=torch.float64))
    x = math.sqrt(n) * q  # x^T x / n = I: the LASSO solution soft-thresholds x^T y / n
    y = torch.randn(n, generator=g, dtype=torch.float64)
    w, change = ista(x, y, 0.3, 1.0, 50)
    torch.testing.assert_close(w, soft_threshold(x.T @ y / n, 0.3))
    assert change < 1e-14


def test_ista_solution_satisfies_the_lasso_kkt_conditions():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(30, 50, generator=g, dtype=torch.float64)
    y = torch.randn(30, generator=g, dtype=torch.float64)
    lam = 0.1
    lr = 1.0 / torch.linalg.eigvalsh(x.T @ x / 30)[-1].item()
    w, _ = ista(x, y, lam, lr, 20000)
    corr = x.T @ (y - x @ w) / 30  # = lam sign(w_j) on the support, |.| <= lam off it
    on = w != 0
    assert on.any() and (~on).any()
    torch.testing.assert_close(corr[on], lam * w[on].sign(), rtol=0, atol=1e-8)
    assert corr[~on].abs().max() <= lam + 1e-8
    objective = 0.5 * ((x @ w - y) ** 2).mean() + lam * w.abs().sum()
    torch.testing.assert_close(lasso_objective(w, x, y, lam), objective)


def test_check_thresholds():
    data = {"fractions": [0.01, 0.1, 1.0], "ista_l1": [3.0, 2.0, 0.0],
            "ista_zeros": [0.95, 0.97, 1.0], "ista_obj": [1.0, 2.0, 3.0],
            "ndgm_l1": [3.5, 4.0, 9.0], "ndgm_zeros": [0.0, 0.0, 0.0],
            "ndgm_obj": [1.1, 2.5, 9.0]}
    assert all(c.passed for c in NonDifferentiableL1().check(data))
    data["ista_l1"] = [3.0, 3.5, 0.0]  # the LASSO path may not rise
    data["ndgm_obj"] = [1.1, 2.1, 9.0]  # 1.05x: "converged"
    assert [c.passed for c in NonDifferentiableL1().check(data)] == [True, False, True, True,
                                                                      False]
