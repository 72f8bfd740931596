"""Bilevel methods (papers.md rows 60, 88, 100) against closed forms: the cold-start limit,
the warm-start stationary set, the radial implicit-hypergradient limit, the BDA
counter-example's plain-unrolling answer, and the penalty gradient x/(sigma+2)."""

import pytest
import torch

from trainlab.bilevel import (
    BILEVEL,
    BilevelProblem,
    aggregated_step,
    bda,
    bda_counterexample,
    bilevel_gd,
    gradient_step,
    implicit_hypergradient,
    penalty_bilevel,
    penalty_hypergradient,
    unroll,
)
from trainlab.errors import ConfigError
from trainlab.optim.procedures import ift_hypergradient

D = torch.float64
B = torch.tensor([1.0, 2.0], dtype=D)
U0 = torch.tensor([1.0, 0.0], dtype=D)
W0 = torch.zeros(2, dtype=D)
# one-point distillation: inner 1/2 (u.w - 1)^2 (a line of solutions), outer 1/2 |w - b|^2
DISTILL = BilevelProblem(outer=lambda u, w: 0.5 * ((w - B) ** 2).sum(),
                         inner=lambda u, w: 0.5 * (u @ w - 1) ** 2)


def test_cold_start_reaches_the_closed_form_u_star():
    run = bilevel_gd(DISTILL, U0, W0, start="cold", inner_steps=40, inner_lr=1.5,
                     outer_lr=0.05, outer_steps=120)
    assert torch.allclose(run.x, B / (B @ B), atol=1e-5)  # inner GD from 0: w = u / |u|^2
    assert float(run.outer_values[-1]) < 1e-9


def test_warm_start_stops_on_the_stationary_line_and_its_u_fails_after_retraining():
    run = bilevel_gd(DISTILL, U0, W0, start="warm", inner_steps=5, inner_lr=0.3,
                     outer_lr=0.1, outer_steps=500)
    assert float(run.x @ B) == pytest.approx(1.0, abs=1e-6)  # every u with u.b = 1 is stationary
    assert float(run.hypergrad_norms[-1]) < 1e-6
    assert float((run.x - B / (B @ B)).norm()) > 0.3  # not the cold-start solution
    assert float(run.outer_values[-1]) < 0.05  # the warm inner iterate fits b ...
    retrained = run.x / (run.x @ run.x)  # ... but re-training w from 0 at this u does not
    assert float(DISTILL.outer(run.x, retrained)) > 1.0


def test_cold_start_with_implicit_hypergradient_only_rescales_u():
    # inner Hessian u u^T is singular: the IFT hypergradient is parallel to u, so u stays on
    # its ray and stops where u.b = 1: u = u0 / (u0.b), here (1, 0).
    u0 = torch.tensor([1.5, 0.2], dtype=D)
    run = bilevel_gd(DISTILL, u0, W0, start="cold", inner_steps=60, inner_lr=0.6,
                     outer_lr=0.3, outer_steps=30, hypergradient="implicit",
                     neumann_steps=5, alpha=0.5)
    assert torch.allclose(run.x, u0 / (u0 @ B), atol=1e-6)


def test_cold_start_on_overparameterized_outer_is_min_norm_from_x0():
    a = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]], dtype=D)
    c, d = torch.tensor([1.0, -1.0], dtype=D), 2.0
    prob = BilevelProblem(outer=lambda x, y: 0.5 * (c @ y - d) ** 2,
                          inner=lambda x, y: 0.5 * ((y - a @ x) ** 2).sum())
    x0 = torch.tensor([0.3, -0.2, 0.5], dtype=D)
    run = bilevel_gd(prob, x0, torch.zeros(2, dtype=D), start="cold", inner_steps=1,
                     inner_lr=1.0, outer_lr=0.1, outer_steps=200)
    v = a.T @ c
    expected = x0 + v * (d - c @ a @ x0) / (v @ v)  # projection of x0 onto {c.Ax = d}
    assert torch.allclose(run.x, expected, atol=1e-8)


def test_bda_schedule_is_alpha_over_t():
    a, b = torch.tensor([1.0, 0.0], dtype=D), torch.tensor([0.0, 1.0], dtype=D)
    prob = BilevelProblem(outer=lambda x, y: b @ y, inner=lambda x, y: a @ y)
    step = aggregated_step(prob, alpha=0.6, s_l=0.5, s_u=2.0)
    y = torch.zeros(2, dtype=D)
    for t in (1, 2, 3):
        new = step(W0, y, t, False)
        at = 0.6 / t
        assert torch.allclose(y - new, (1 - at) * 0.5 * a + at * 2.0 * b, atol=1e-15)
        y = new


def test_plain_unrolling_fails_the_counterexample_and_bda_solves_it():
    prob = bda_counterexample(1)
    x0, y0 = torch.zeros(1, dtype=D), torch.zeros(2, dtype=D)
    plain = bda(prob, x0, y0, inner_steps=20, alpha=0.0, s_l=0.9, s_u=0.9, outer_lr=0.3,
                outer_steps=60)
    assert float(plain.x) == pytest.approx(0.5, abs=1e-4)
    assert float(plain.y[1]) == 0.0  # y2 never moves
    assert float(plain.outer_values[-1]) == pytest.approx(1 / 16, abs=1e-4)
    agg = bda(prob, x0, y0, inner_steps=20, alpha=0.5, s_l=0.9, s_u=0.9, outer_lr=0.5,
              outer_steps=80)
    assert float(agg.outer_values[-1]) < 1e-3
    assert abs(float(agg.y[1] - agg.x)) < 0.1


def test_bda_on_singleton_lower_level_agrees_with_plain_unrolling():
    prob = BilevelProblem(outer=lambda x, y: 0.5 * ((y - 1.0) ** 2).sum() + 0.1 * (x @ x),
                          inner=lambda x, y: 0.5 * ((y - x) ** 2).sum())
    x0, y0 = torch.zeros(2, dtype=D), torch.zeros(2, dtype=D)
    kw = dict(s_l=0.9, s_u=0.9, outer_lr=0.5, outer_steps=30)
    xa = bda(prob, x0, y0, alpha=0.0, inner_steps=20, **kw).x
    assert torch.allclose(xa, torch.full((2,), 1 / 1.2, dtype=D), atol=1e-6)
    # alpha_t = alpha / t vanishes: the aggregation bias shrinks as T grows
    gaps = [float((bda(prob, x0, y0, alpha=0.5, inner_steps=t, **kw).x - xa).norm())
            for t in (10, 40)]
    assert gaps[1] < 0.5 * gaps[0] and gaps[1] < 1e-2


# many lower-level solutions: g = 1/2 (y1 + y2 - x)^2, upper 1/2 |y|^2 (+ 1/2 (x - 3)^2)
MANY = BilevelProblem(outer=lambda x, y: 0.5 * (y @ y) + 0.5 * ((x - 3) ** 2).sum(),
                      inner=lambda x, y: 0.5 * (y.sum() - x.sum()) ** 2)


@pytest.mark.parametrize("sigma", [0.1, 0.01, 0.001])
def test_penalty_gradient_is_x_over_sigma_plus_two_from_any_start(sigma):
    x = torch.tensor([1.0], dtype=D)
    for y0 in ([0.3, -0.7], [2.0, 5.0]):
        y = torch.tensor(y0, dtype=D)
        g, _, _ = penalty_hypergradient(MANY, x, y, y, sigma=sigma, inner_steps=40,
                                        inner_lr=0.4)
        assert float(g) == pytest.approx(1.0 / (sigma + 2) + (1.0 - 3.0), abs=1e-6)


def test_penalty_method_converges_to_the_penalised_stationary_point():
    sigma = 0.01
    run = penalty_bilevel(MANY, torch.zeros(1, dtype=D), torch.zeros(2, dtype=D), sigma=sigma,
                          inner_steps=10, inner_lr=0.4, outer_lr=0.5, outer_steps=60)
    assert float(run.x) == pytest.approx(3 * (sigma + 2) / (sigma + 3), abs=1e-6)
    assert abs(float(run.x) - 2.0) < 2 * sigma  # the optimistic solution is x = 2


def test_penalty_matches_ift_hypergradient_on_a_unique_lower_level():
    a = torch.tensor([[1.0, 0.5], [0.0, 2.0], [1.0, -1.0]], dtype=D)
    c = torch.tensor([0.2, -1.0, 0.4], dtype=D)
    prob = BilevelProblem(outer=lambda x, y: 0.5 * ((y - c) ** 2).sum(),
                          inner=lambda x, y: 0.5 * ((y - a @ x) ** 2).sum())
    x, sigma = torch.tensor([0.7, -0.3], dtype=D), 0.05
    g, _, _ = penalty_hypergradient(prob, x, torch.zeros(3, dtype=D), torch.zeros(3, dtype=D),
                                    sigma=sigma, inner_steps=60, inner_lr=0.5)
    exact = a.T @ (a @ x - c)
    assert torch.allclose(g * (1 + sigma), exact, atol=1e-8)  # grad psi_sigma = exact/(1+sigma)
    ift = ift_hypergradient(lambda w, lam: prob.inner(lam, w), lambda w, lam: prob.outer(lam, w),
                            a @ x, x, neumann_steps=60, alpha=0.5).hypergrad
    assert torch.allclose(ift, exact, atol=1e-8)
    assert torch.allclose(implicit_hypergradient(prob, x, a @ x, neumann_steps=60, alpha=0.5),
                          exact, atol=1e-8)


def test_unroll_is_differentiable_only_when_asked():
    step = gradient_step(DISTILL, 0.3)
    y = unroll(step, U0, W0, 3)
    assert not y.requires_grad


def test_bad_arguments_raise_config_errors_and_entries_cite_rows():
    with pytest.raises(ConfigError, match="start"):
        bilevel_gd(DISTILL, U0, W0, start="hot", inner_steps=1, inner_lr=0.1, outer_lr=0.1,
                   outer_steps=1)
    with pytest.raises(ConfigError, match="alpha"):
        aggregated_step(DISTILL, alpha=1.5, s_l=0.1, s_u=0.1)
    with pytest.raises(ConfigError, match="sigma"):
        penalty_hypergradient(MANY, U0[:1], W0, W0, sigma=0.0, inner_steps=1, inner_lr=0.1)
    assert {BILEVEL.entry(n).papers for n in ("cold-start", "warm-start", "bda", "penalty")} \
        == {(60,), (88,), (100,)}
