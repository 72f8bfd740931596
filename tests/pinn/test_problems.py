"""Each problem's reference against its PDE (through the shared derivatives), its closed form
or a refinement study; sampling, and the error messages."""

import math

import pytest
import torch

from trainlab.errors import ConfigError, UnknownNameError
from trainlab.pinn.derivatives import jet
from trainlab.pinn.problems import PROBLEMS, build_problem
from trainlab.pinn.problems.burgers import cole_hopf

SMALL = {"poisson": {"k": 3}, "heat": {"initial": "parabola"}, "burgers": {"nodes": 64},
         "advection": {"c": 10.0}, "oscillator": {"omega": 2.0}}
# how well the reference satisfies each term (the Cole-Hopf quadrature is differentiated
# through; the parabola series is truncated at 4000 modes)
TOL = {"poisson": 1e-11, "heat": 1e-8, "burgers": 1e-8, "advection": 1e-12,
       "oscillator": 1e-13}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_reference_satisfies_every_term(name):
    p = build_problem(name, **SMALL[name])
    g = torch.Generator().manual_seed(0)
    for term in p.terms:
        x = term.sample(64, g)
        if name == "burgers":  # d/dt sqrt(nu t) is singular at t = 0: test t >= 0.05
            x[:, 0] = x[:, 0].clamp(min=0.05) if term.name != "initial" else 0.0
        order = max(term.order, 1)
        r = term.residual(jet(lambda q: p.reference(q[None])[0], x, order=2 if order == 2
                              else 1), x)
        assert r.abs().max() < TOL[name], (name, term.name, r.abs().max())


def test_poisson_ladder_is_the_closed_form_and_boundary_samples_lie_on_the_boundary():
    for k in range(1, 9):
        p = build_problem("poisson", k=k)
        x = p.grid[::37]
        expected = torch.sin(k * math.pi * x[:, 0]) * torch.sin(k * math.pi * x[:, 1])
        torch.testing.assert_close(p.reference(x)[:, 0], expected)
        assert p.error_floor() == 0.0
    b = p.term("boundary").sample(500, torch.Generator().manual_seed(1))
    on_edge = ((b == 0) | (b == 1)).any(1)
    assert on_edge.all() and (b >= 0).all() and (b <= 1).all()
    # every face gets points
    assert {(b[:, 0] == 0).any().item(), (b[:, 0] == 1).any().item(),
            (b[:, 1] == 0).any().item(), (b[:, 1] == 1).any().item()} == {True}


def test_heat_series_converges_and_its_floor_is_measured():
    p = build_problem("heat", initial="parabola", modes=400, grid_points=21)
    floor = p.error_floor()
    assert 0.0 < floor < 1e-6  # 400 vs 800 modes
    x0 = torch.stack([torch.zeros(11), torch.linspace(0, 1, 11)], 1).double()
    s = x0[:, 1]
    assert (p.reference(x0)[:, 0] - s * (1 - s)).abs().max() < 1e-6
    fine = build_problem("heat", initial="parabola", modes=800, grid_points=21)
    assert fine.error_floor() < floor / 4  # algebraic convergence, about N^-2.5
    sine = build_problem("heat")
    xt = torch.tensor([[0.3, 0.25]], dtype=torch.float64)
    expected = math.exp(-0.4 * math.pi ** 2 * 0.3) * math.sin(math.pi * 0.25)
    assert sine.reference(xt).item() == pytest.approx(expected, rel=1e-14)


def test_cole_hopf_matches_the_basdevant_slope_and_initial_condition():
    t = 1.6037 / math.pi
    h = 1e-6
    x = torch.tensor([[t, -h], [t, h]], dtype=torch.float64)
    u = cole_hopf(x)
    slope = (u[1, 0] - u[0, 0]) / (2 * h)
    assert slope.item() == pytest.approx(-152.00516, abs=2e-3)
    x0 = torch.stack([torch.zeros(9), torch.linspace(-1, 1, 9)], 1).double()
    torch.testing.assert_close(cole_hopf(x0)[:, 0], -torch.sin(math.pi * x0[:, 1]))
    p = build_problem("burgers", nodes=64, grid_x=32, grid_t=11)
    assert p.error_floor() < 1e-9  # 64 vs 128 nodes (measured 1.2e-11)


def test_kepler_reference_conserves_energy_and_has_a_small_floor():
    p = build_problem("kepler", grid_points=101)
    floor = p.error_floor()
    assert 0.0 < floor < 1e-8
    e = p.conserved(p.reference(p.grid))
    assert (e - e[0]).abs().max() < 1e-8 and e[0].item() == pytest.approx(-0.5, abs=1e-12)
    osc = build_problem("oscillator")
    e = osc.conserved(osc.reference(osc.grid))
    assert (e - 0.5).abs().max() < 1e-14


def test_sampling_is_reproducible_from_the_generator():
    p = build_problem("burgers", grid_x=8, grid_t=3)
    for term in p.terms:
        a = term.sample(10, torch.Generator().manual_seed(3))
        b = term.sample(10, torch.Generator().manual_seed(3))
        assert torch.equal(a, b) and a.dtype == torch.float64


def test_bad_input_gets_one_line_errors():
    with pytest.raises(UnknownNameError, match="poisson") as err:
        build_problem("poison")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="n_interior"):
        build_problem("poisson", n_interior=0)
    with pytest.raises(ConfigError, match="'initial'.*'sine', 'parabola'"):
        build_problem("heat", initial="gauss")
    with pytest.raises(ConfigError, match="problem 'poisson'"):
        build_problem("poisson", q=1)
    assert set(PROBLEMS.names()) >= set(SMALL)
