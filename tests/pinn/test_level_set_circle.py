"""Neural implicit surface evolution (papers.md row 2): the closed-form level-set solution of
a circle under mean-curvature flow, the zero-level-set radius against sqrt(r0^2 - 2t), and a
space-time network trained on the level-set residual that tracks the shrinking circle."""

import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.pinn.derivatives import jet
from trainlab.pinn.problems import PROBLEMS, build_problem
from trainlab.pinn.problems.level_set_circle import radius_error, zero_level_radius
from trainlab.pinn.task import fit_engd
from trainlab.tasks import build_task


def test_closed_form_solves_the_level_set_equation_and_its_radius_is_the_flow():
    p = build_problem("level-set-circle", grid_x=11, grid_t=5)
    g = torch.Generator().manual_seed(0)
    for term in p.terms:
        x = term.sample(100, g)
        r = term.residual(jet(lambda q: p.reference(q[None])[0], x, order=2), x)
        assert r.abs().max() < 1e-8, term.name  # eps = 1e-6 in the curvature term
    times = torch.tensor([0.0, 0.1, 0.2], dtype=torch.float64)
    radius = zero_level_radius(p.reference, times, rays=8)
    expected = torch.sqrt(0.64 - 2 * times)[:, None].expand(3, 8)
    torch.testing.assert_close(radius, expected, rtol=1e-12, atol=1e-14)
    assert radius_error(p.reference, p) < 1e-12

    def half_speed(q):  # the flow at half the speed: sqrt(r0^2 - t)
        return torch.sqrt(q[:, 1:].pow(2).sum(1, keepdim=True) + q[:, :1]) - 0.8

    assert radius_error(half_speed, p) > 0.1
    assert math.isinf(radius_error(lambda q: torch.ones(len(q), 1, dtype=q.dtype), p))
    assert PROBLEMS.entry("level-set-circle").papers == (2,)
    with pytest.raises(ConfigError, match="'horizon' parameter of level-set-circle"):
        build_problem("level-set-circle", horizon=0.4)  # the circle is gone at 0.32


def test_a_space_time_network_tracks_the_shrinking_circle():
    task = build_task("pinn-level-set-circle", n_interior=200, n_initial=100, grid_x=21,
                      grid_t=6)
    before = radius_error(fit_engd(task, 0, width=16).solution, task.problem)
    model = fit_engd(task, 30, width=16)
    with torch.no_grad():
        err = float(task.metrics(model(task.x_test), task.y_test)["rel_l2"])
    # measured: radius error 9.0e-2 (none at initialisation: no zero level set), rel L2 7.1e-2
    assert math.isinf(before) or before > 0.5
    assert radius_error(model.solution, task.problem) < 0.2 and err < 0.15
