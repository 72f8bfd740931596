"""tubal-implicit-regularization (row 23): the target is an orthonormal tubal projector, the
closed-form gradient matches autograd, and the check reads hand-made error curves."""

from __future__ import annotations

import numpy as np
import torch

from trainlab.phenomena.karnik2024_tubal import (
    TubalImplicitRegularization,
    sensing_gradient,
    tubal_projector,
)
from trainlab.theory.tubal import t_gram, t_product, t_transpose, tubal_rank


def test_target_is_a_rank_r_tubal_projector():
    x = tubal_projector(6, 2, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(t_product(x, x), x, atol=1e-12)
    assert torch.allclose(t_transpose(x), x, atol=1e-12)
    assert tubal_rank(x) == 2


def test_gradient_matches_autograd():
    g = torch.Generator().manual_seed(1)
    u = torch.randn(5, 7, 4, generator=g, dtype=torch.float64).requires_grad_()
    meas = torch.randn(30, 100, generator=g, dtype=torch.float64)
    y = torch.randn(30, generator=g, dtype=torch.float64)
    (0.5 * (meas @ t_gram(u).reshape(-1) - y).pow(2).sum()).backward()
    ours = sensing_gradient(u.detach(), meas, y)
    assert torch.allclose(ours, u.grad, rtol=1e-10, atol=1e-9)


def test_check_on_hand_made_errors():
    data = {"alphas": [1e-2, 1e-4, 1e-6, 1e-8], "r_star": 3,
            "error": np.array([[0.3, 0.1, 0.03, 0.01], [0.2, 0.08, 0.02, 0.005]]),
            "rank": np.array([[5, 4, 3, 3], [4, 3, 3, 3]])}
    assert all(c.passed for c in TubalImplicitRegularization().check(data))
    swapped = dict(data, error=data["error"][:, [0, 2, 1, 3]])
    assert not TubalImplicitRegularization().check(swapped)[0].passed
    quick = {"alphas": [1e-2, 1e-3, 1e-4], "r_star": 3, "error": np.array([[0.3, 0.2, 0.1]]),
             "rank": np.array([[5, 4, 4]])}
    checks = TubalImplicitRegularization().check(quick)
    assert len(checks) == 2 and checks[0].passed and not checks[1].passed
