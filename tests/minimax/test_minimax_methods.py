"""Min-max methods (papers.md rows 91 and 110) against exact linear-game oracles: the measured
per-step contraction equals the iteration matrix's spectral radius, the resolvent equals a
dense solve, and the O(1/N) bounds hold."""

import math

import pytest
import torch

from trainlab.errors import ConfigError, TrainlabError
from trainlab.minimax import (
    MINIMAX,
    comonotonicity,
    extragradient,
    extragradient_bound,
    game_operator,
    gda,
    iteration_matrix,
    linear_game,
    linear_operator,
    local_radii,
    proximal_point,
    proximal_point_bound,
    resolvent,
    spectral_radius,
    two_timescale_extragradient,
    two_timescale_gda,
)

Z0 = torch.tensor([1.0, -0.5], dtype=torch.float64)


def test_comonotonicity_of_linear_game_matches_closed_form():
    for a, b in [(-1.0, 3.0), (-1.0, 5.0), (-0.2, 1.0)]:
        rho, lip = comonotonicity(linear_game(a, b))
        assert rho == pytest.approx(-a / (a * a + b * b), rel=1e-12)
        assert lip == pytest.approx(math.hypot(a, b), rel=1e-12)
    # brute force: <Au, u> >= -rho ||Au||^2 on random directions, with equality approached
    a = linear_game(-1.0, 3.0)
    u = torch.randn(2, 4000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    au = a @ u
    ratio = -(au * u).sum(0) / (au * au).sum(0)
    assert float(ratio.max()) == pytest.approx(0.1, abs=1e-9)


def test_game_operator_negates_the_max_players_gradient():
    a, b = -1.0, 3.0
    f = lambda x, y: 0.5 * a * (x @ x - y @ y) + b * (x @ y)  # noqa: E731
    op = game_operator(f, 1)
    z = torch.tensor([0.3, -1.7], dtype=torch.float64)
    assert torch.allclose(op(z), linear_game(a, b) @ z, atol=1e-14)


def test_resolvent_matches_dense_solve_and_nonlinear_residual():
    a = linear_game(-1.0, 3.0)
    w, _ = resolvent(linear_operator(a), Z0, 0.25)
    assert torch.allclose(w, torch.linalg.solve(torch.eye(2, dtype=a.dtype) + 0.25 * a, Z0),
                          atol=1e-13)
    op = game_operator(lambda x, y: (x**4).sum() / 4 - (x * y).sum() - (y**2).sum() / 2, 1)
    w, _ = resolvent(op, Z0, 0.3)
    assert float((w + 0.3 * op(w) - Z0).norm()) < 1e-10


def test_resolvent_reports_failure_instead_of_returning_inexact_point():
    with pytest.raises(TrainlabError, match="did not reach"):
        op = game_operator(lambda x, y: (x**4).sum() - (x * y).sum(), 1)
        resolvent(op, Z0, 0.3, max_iter=1)


@pytest.mark.parametrize("gamma", [0.1, 0.25, 0.4])
def test_proximal_point_contracts_iff_gamma_above_two_rho(gamma):
    a = linear_game(-1.0, 3.0)  # rho = 0.1
    run = proximal_point(linear_operator(a), Z0, gamma=gamma, steps=40)
    radius = spectral_radius(torch.linalg.inv(torch.eye(2, dtype=a.dtype) + gamma * a))
    assert run.contraction() == pytest.approx(radius, rel=1e-9)
    assert (radius < 1) == (gamma > 0.2)


def test_proximal_point_last_iterate_bound_holds_and_is_infinite_below_threshold():
    a = linear_game(-1.0, 3.0)
    rho, _ = comonotonicity(a)
    run = proximal_point(linear_operator(a), Z0, gamma=0.25, steps=30)
    d = float(Z0.norm())
    for n in (1, 5, 30):
        assert float(run.residuals[n]) ** 2 <= proximal_point_bound(0.25, rho, d, n)
    assert proximal_point_bound(0.19, rho, d, 10) == math.inf


def test_extragradient_threshold_gamma2_below_gamma1_minus_two_rho():
    for a_, b_ in [(-1.0, 3.0), (-1.0, 5.0), (-0.2, 1.0)]:
        a = linear_game(a_, b_)
        rho, lip = comonotonicity(a)
        g1 = 1 / lip
        below = spectral_radius(iteration_matrix(a, g1, g1 - 2 * rho - 1e-3))
        above = spectral_radius(iteration_matrix(a, g1, g1 - 2 * rho + 1e-3))
        assert below < 1 < above
    a = linear_game(-1.0, 3.0)
    assert spectral_radius(iteration_matrix(a, 1 / math.sqrt(10))) > 1.5  # gamma1 = gamma2


def test_extragradient_run_matches_iteration_matrix_and_bound():
    a = linear_game(-1.0, 3.0)
    rho, lip = comonotonicity(a)
    g1, g2 = 1 / lip, 0.5 * (1 / lip - 2 * rho)
    run = extragradient(linear_operator(a), Z0, gamma1=g1, gamma2=g2, steps=50)
    assert run.contraction() == pytest.approx(spectral_radius(iteration_matrix(a, g1, g2)),
                                              rel=1e-9)
    assert run.evaluations == 100
    best = torch.cummin(run.extrapolated**2, 0).values
    for n in (1, 10, 50):
        assert float(best[n - 1]) <= extragradient_bound(g1, g2, rho, lip, float(Z0.norm()), n)


def test_gda_spirals_out_on_bilinear_game_where_extragradient_converges():
    op = linear_operator(linear_game(0.0, 1.0))
    out = gda(op, Z0, gamma=0.1, steps=200)
    assert out.contraction() == pytest.approx(math.sqrt(1.01), rel=1e-9)
    eg = extragradient(op, Z0, gamma1=0.5, steps=200)
    assert float(eg.last.norm()) < 1e-6


def test_two_timescale_extragradient_with_tau_one_is_extragradient():
    op = linear_operator(linear_game(-0.5, 1.0))
    a = two_timescale_extragradient(op, Z0, dim_x=1, lr=0.3, tau=1.0, steps=20)
    b = extragradient(op, Z0, gamma1=0.3, steps=20)
    assert torch.equal(a.iterates, b.iterates)


def test_two_timescale_eg_stabilises_degenerate_local_minimax_where_gda_fails():
    # f = -x^2/4 + x y: (0, 0) is local minimax with grad_yy f = 0
    f = lambda x, y: -0.25 * (x @ x) + x @ y + (x**3).sum() / 3  # noqa: E731
    op = game_operator(f, 1)
    jac = torch.func.jacfwd(op)(torch.zeros(2, dtype=torch.float64))
    z0 = torch.tensor([0.05, 0.05], dtype=torch.float64)
    for tau in (1.0, 4.0, 16.0):
        radii = local_radii(jac, dim_x=1, lr=0.9, tau=tau)
        assert radii["gda"] > 1
        assert (radii["extragradient"] < 1) == (tau > 1)
    eg = two_timescale_extragradient(op, z0, dim_x=1, lr=0.9, tau=4.0, steps=1000)
    gd = two_timescale_gda(op, z0, dim_x=1, lr=0.9, tau=4.0, steps=100)
    assert float(eg.last.norm()) < 1e-3
    assert bool((gd.iterates.norm(dim=1) > 1.0).any())  # leaves the neighbourhood
    assert local_radii(jac, dim_x=1, lr=0.9, tau=4.0)["extragradient"] == pytest.approx(
        0.99317, abs=1e-4)


def test_bad_arguments_raise_config_errors():
    op = linear_operator(linear_game(-1.0, 3.0))
    with pytest.raises(ConfigError, match="gamma"):
        proximal_point(op, Z0, gamma=0.0, steps=1)
    with pytest.raises(ConfigError, match="scale"):
        extragradient(op, Z0, gamma1=0.1, steps=1, scale=torch.ones(3, dtype=torch.float64))
    with pytest.raises(ConfigError, match="method"):
        iteration_matrix(linear_game(-1.0, 3.0), 0.1, method="ogda")


def test_registry_lists_rows_91_and_110():
    assert MINIMAX.entry("proximal-point").papers == (91,)
    assert MINIMAX.entry("two-timescale-extragradient").papers == (110,)
