"""Lagrangian PINNs (papers.md row 66): the reference solves the Lagrangian equations, the
Eulerian error of the exact pair is zero, and the paper's claim on the advection speed
ladder: at c = 30 the Eulerian PINN fails where the Lagrangian one succeeds (same network,
points, optimizer and steps)."""

import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.pinn.derivatives import jet
from trainlab.pinn.problems import PROBLEMS, build_problem
from trainlab.pinn.problems.advection_lagrangian import eulerian_error
from trainlab.pinn.task import fit_engd
from trainlab.tasks import build_task


def test_reference_solves_the_lagrangian_problem_and_has_zero_eulerian_error():
    p = build_problem("advection-lagrangian", c=7.0, grid_x=16, grid_t=5)
    g = torch.Generator().manual_seed(0)
    for term in p.terms:
        x = term.sample(32, g)
        r = term.residual(jet(lambda q: p.reference(q[None])[0], x, order=1), x)
        assert r.abs().max() < 1e-12
    assert eulerian_error(p.reference, p) < 1e-14
    # a wrong characteristic (speed 6 instead of 7) is charged by the Eulerian error
    def slow(q):
        return torch.cat([torch.sin(q[:, 1:2]), q[:, 1:2] + 6.0 * q[:, :1]], 1)

    assert eulerian_error(slow, p) > 0.3
    pt = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(p.reference(pt), torch.tensor([[math.sin(1.0), 4.5]],
                                                             dtype=torch.float64))
    assert PROBLEMS.entry("advection-lagrangian").papers == (66,)
    with pytest.raises(ConfigError, match="'c' parameter of advection-lagrangian"):
        build_problem("advection-lagrangian", c=0.0)


def _train(name, c, steps=15):
    extra = {} if "lagrangian" in name else {"n_boundary": 40}
    task = build_task(name, c=c, n_interior=150, n_initial=40, grid_x=64, grid_t=21,
                      constraint="hard", **extra)
    model = fit_engd(task, steps, width=12)
    if "lagrangian" in name:
        return eulerian_error(model.solution, task.problem)
    with torch.no_grad():
        return float(task.metrics(model(task.x_test), task.y_test)["rel_l2"])


def test_eulerian_pinn_fails_at_high_speed_where_the_lagrangian_pinn_succeeds():
    eulerian_slow = _train("pinn-advection", 1.0)
    eulerian_fast = _train("pinn-advection", 30.0)
    lagrangian_fast = _train("pinn-advection-lagrangian", 30.0)
    # measured: 0.08, 1.5 and 1.3e-6
    assert eulerian_fast > 0.5 and eulerian_fast > 5 * eulerian_slow
    assert lagrangian_fast < 1e-4
