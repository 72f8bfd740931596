"""The G3 trajectory planner (papers.md row 99) against independent references: an ODE
integration of the pose, closed forms of the cost, finite differences of its gradient and
the exact minimum-jerk optimum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp
from scipy.optimize import minimize_scalar

from trainlab.errors import ConfigError, TrainlabError
from trainlab.optim.procedures.botros2021_g3_trajectory import (
    G3Path,
    Pose,
    min_jerk_cost,
    plan_g3_trajectory,
    speed_and_cost,
)
from trainlab.phenomena.botros2021_g3_tradeoff import continuity_jumps

F64 = torch.float64
START = Pose(0.0, 0.0, 0.0)
GOALS = [Pose(40.0, 30.0, math.pi / 2), Pose(50.0, -20.0, -math.pi / 3),
         Pose(30.0, 25.0, 2.5)]


@pytest.mark.parametrize("goal", GOALS)
def test_path_reaches_the_goal_by_an_independent_ode_integration(goal):
    sigma = 0.5 * _lowest_feasible(goal) + 0.5 * 1.0
    path = G3Path(START, goal, torch.tensor(sigma, dtype=F64))
    assert path.feasible and path.end_pose_error() < 1e-9
    knots = path.knots.detach().numpy()

    def rhs(s, z):
        _, _, th, kap, _ = z
        i = np.searchsorted(knots, s, side="right") - 2  # turn piece index, -1 / 4: straights
        ddk = path._pieces[i][3].item() if 0 <= i < 4 else 0.0
        return [math.cos(th), math.sin(th), kap, z[4], ddk]

    z, s0 = np.array([0.0, 0.0, START.theta, 0.0, 0.0]), 0.0
    for s1 in knots[1:]:  # piece by piece, so the ODE never steps across a jump of kappa''
        if s1 > s0:
            z = solve_ivp(rhs, (s0, s1), z, rtol=1e-12, atol=1e-12, method="DOP853").y[:, -1]
        s0 = s1
    assert abs(z[0] - goal.x) < 1e-7 and abs(z[1] - goal.y) < 1e-7
    assert abs(math.remainder(z[2] - goal.theta, 2 * math.pi)) < 1e-8  # ODE tolerance
    assert abs(z[3]) < 1e-8 and abs(z[4]) < 1e-8  # kappa, kappa' back to 0 on the straight


def _lowest_feasible(goal):
    from trainlab.optim.procedures.botros2021_g3_trajectory import _sigma_interval
    return _sigma_interval(START, goal, 1e-5, 10.0)[0]


def test_turn_angle_is_2_sigma_ell_cubed_and_curvature_is_g3():
    goal = GOALS[0]
    sigma = torch.tensor(0.01, dtype=F64)
    path = G3Path(START, goal, sigma)
    assert float(2 * sigma * path.ell ** 3) == pytest.approx(math.pi / 2, rel=1e-12)
    jump_k, jump_dk = continuity_jumps(path)
    assert jump_k < 1e-9 and jump_dk < 1e-9
    mid = (path.knots[1:-1] + path.knots[2:]).detach() / 2
    _, _, ddk = path.curvature(mid[:4])
    assert torch.allclose(ddk.abs(), sigma.expand(4))
    assert float(path.peak_curvature) == pytest.approx(float(sigma * path.ell ** 2))


def test_cost_matches_closed_forms_at_constant_speed():
    v = 7.0
    line = G3Path(START, Pose(100.0, 0.0, 0.0), torch.tensor(1.0, dtype=F64))
    j, t, c = speed_and_cost(line, torch.zeros(6, dtype=F64), v, 1.0)
    assert float(t) == pytest.approx(100.0 / v, rel=1e-13) and float(c) == 0.0
    goal, sigma = GOALS[0], 0.003
    path = G3Path(START, goal, torch.tensor(sigma, dtype=F64))
    j, t, c = speed_and_cost(path, torch.zeros(9, dtype=F64), v, 0.5)
    # lateral jerk v^3 kappa': integral of v^6 kappa'^2 dt = v^5 * 4 sigma^2 ell^3 / 3
    assert float(c) == pytest.approx(2 / 3 * v ** 5 * sigma * math.pi / 2, rel=1e-10)
    assert float(t) == pytest.approx(float(path.length) / v, rel=1e-13)
    assert float(j) == pytest.approx(float(t) + 0.5 * float(c), rel=1e-13)


def test_gradient_in_sigma_matches_finite_differences():
    goal = GOALS[1]
    accel = torch.tensor([0.0, 0.4, -0.3, 0.2, 0.1, -0.2, 0.0], dtype=F64)
    ls = torch.tensor(math.log(0.05), dtype=F64, requires_grad=True)

    def cost(x):
        return speed_and_cost(G3Path(START, goal, x.exp()), accel, 9.0, 0.3)[0]

    (g,) = torch.autograd.grad(cost(ls), ls)
    h = 1e-5
    with torch.no_grad():
        fd = (cost(ls + h) - cost(ls - h)) / (2 * h)
    assert float(g) == pytest.approx(float(fd), rel=1e-6)


def test_straight_road_optimum_is_within_2_percent_of_minimum_jerk():
    dist, speed, w = 100.0, 10.0, 5.0
    r = plan_g3_trajectory(START, Pose(dist, 0.0, 0.0), v0=speed, v_goal=speed, weight=w)
    exact = minimize_scalar(lambda t: t + w * min_jerk_cost(dist, speed, t), bounds=(1, 30),
                            method="bounded", options={"xatol": 1e-10})
    assert r.converged
    assert 1 - 1e-9 <= r.cost / exact.fun <= 1.02
    assert r.time == pytest.approx(exact.x, rel=0.02)


def test_goal_speed_constraint_and_descent():
    r = plan_g3_trajectory(START, GOALS[0], v0=6.0, v_goal=10.0, weight=1.0, waypoints=9)
    h = r.length / 8
    assert float(r.accel[0]) == 0.0 and float(r.accel[-1]) == 0.0
    assert h * float(r.accel.sum()) == pytest.approx((10.0 ** 2 - 6.0 ** 2) / 2, rel=1e-10)
    assert all(b <= a + 1e-12 for a, b in zip(r.history, r.history[1:], strict=False))
    assert r.end_pose_error < 1e-9


@pytest.mark.parametrize("goal", GOALS)
def test_every_round_lowers_the_cost(goal):
    # each round lowers J: the path step is judged with the way-points re-projected for its
    # sigma, and the velocity steps are projected (before, a step of length ~1e12 on a
    # rounding-level gradient broke the goal-speed constraint and a later round undid it)
    r = plan_g3_trajectory(START, goal, v0=5.0, v_goal=9.0, weight=1.0, waypoints=7)
    assert len(r.history) >= 2
    assert all(b <= a + 1e-12 * abs(a) for a, b in zip(r.history, r.history[1:]))
    h = r.length / 6
    assert h * float(r.accel.sum()) == pytest.approx((9.0 ** 2 - 5.0 ** 2) / 2, rel=1e-10)


def test_bad_input_is_one_line_errors():
    with pytest.raises(ConfigError, match="weight"):
        plan_g3_trajectory(START, GOALS[0], v0=5.0, v_goal=5.0, weight=0.0)
    with pytest.raises(ConfigError, match="waypoints"):
        plan_g3_trajectory(START, GOALS[0], v0=5.0, v_goal=5.0, weight=1.0, waypoints=2)
    with pytest.raises(TrainlabError, match="not reachable"):  # behind the start
        plan_g3_trajectory(START, Pose(-10.0, 5.0, math.pi / 2), v0=5.0, v_goal=5.0, weight=1.0)
    with pytest.raises(TrainlabError, match="lane change"):
        G3Path(START, Pose(50.0, 3.5, 0.0), torch.tensor(1.0, dtype=F64))
