"""Row 5 (condition refinement, the OT step only): an exact-OT JKO step contracts W2 by
exactly 1/(1+h); Sinkhorn approaches it as the regularisation shrinks."""

from __future__ import annotations

import pytest
import torch

from trainlab.diffusion.zhou2026_condition_ot import jko_refine_step, refine_conditions, w2
from trainlab.errors import ConfigError


def _clouds():
    g = torch.Generator().manual_seed(0)
    c = torch.randn(64, 3, generator=g, dtype=torch.float64) + 1.0
    c_star = 0.5 * torch.randn(64, 3, generator=g, dtype=torch.float64)
    return c, c_star


def test_exact_jko_step_contracts_w2_by_one_over_one_plus_h():
    c, c_star = _clouds()
    for h in (0.5, 1.0, 3.0):
        new = jko_refine_step(c, c_star, step=h)
        assert abs(w2(new, c_star) - w2(c, c_star) / (1 + h)) < 1e-10


def test_refinement_is_geometric():
    c, c_star = _clouds()
    res = refine_conditions(c, c_star, steps=4, step=1.0)
    for k, d in enumerate(res.w2):
        assert abs(d - res.w2[0] * 0.5 ** k) < 1e-9


def test_sinkhorn_approaches_the_exact_step():
    c, c_star = _clouds()
    exact = jko_refine_step(c, c_star)
    errs = [(jko_refine_step(c, c_star, method="sinkhorn", reg=r) - exact).abs().max().item()
            for r in (0.1, 0.03)]
    assert errs[1] < errs[0]
    with pytest.raises(ConfigError, match="'emd', 'sinkhorn'"):
        jko_refine_step(c, c_star, method="greenkhorn")


def test_sinkhorn_non_convergence_is_logged_not_raised(caplog):
    import logging

    from trainlab.diffusion.zhou2026_condition_ot import transport_plan

    g = torch.Generator().manual_seed(3)
    c, c_star = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g) + 3
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        plan = transport_plan(c.double(), c_star.double(), method="sinkhorn", reg=1e-3)
    assert plan.shape == (64, 64)
    assert any("transport_plan (sinkhorn" in r.message for r in caplog.records)
