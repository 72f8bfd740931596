r"""A G3 (continuous curvature-rate) trajectory: a path and a velocity profile optimised by
gradient descent for a tunable trade-off between passenger comfort and travel time.

**Path.** Between a start pose and a goal pose (position and heading, curvature 0 at both),
the path is *straight - turn - straight*. The turn changes the heading by :math:`\Delta` with
a curvature that is piecewise quadratic in arclength: four pieces of equal length :math:`\ell`
with :math:`\kappa'' = \pm\sigma` in the order :math:`+,-,-,+` (times the turn's sign), so
curvature, its rate :math:`\kappa'` and the heading are continuous everywhere (a G3 curve)
and :math:`\kappa = \kappa' = 0` where the turn meets the straights. The heading change is
:math:`\Delta = 2\sigma\ell^3`, so the single tuning parameter :math:`\sigma` (the second
derivative of curvature) fixes :math:`\ell = (|\Delta| / 2\sigma)^{1/3}`, and the two straight
lengths follow from the goal position by a 2x2 linear solve: one path per :math:`\sigma`.
Positions are integrals of :math:`(\cos\theta, \sin\theta)` with :math:`\theta` cubic per piece,
computed by Gauss-Legendre quadrature (32 nodes a piece: exact to rounding at these lengths).

**Velocity.** Acceleration way-points :math:`a_0 = 0, a_1, \dots, a_{M-2}, a_{M-1} = 0` at
equally spaced arclengths, :math:`a(s)` linear between them; :math:`v(s)^2 = v_0^2 +
2\int_0^s a`. The goal speed fixes :math:`\int_0^S a\,ds = (v_g^2 - v_0^2)/2`, a linear
constraint on the interior way-points that projected gradient descent keeps exactly.

**Cost.** With :math:`dt = ds / v`, travel time :math:`T = \int ds / v`; comfort is the
integrated squared jerk, longitudinal :math:`j = v\,a'` and lateral
:math:`j_\perp = \tfrac{d}{dt}(v^2\kappa) = v(2a\kappa + v^2\kappa')`:

.. math::
    J(\sigma, a) = T + w \int (j^2 + j_\perp^2)\,dt
                = \int \frac{ds}{v} + w \int v\,\big(a'^2 + (2a\kappa + v^2\kappa')^2\big)\,ds.

:func:`plan_g3_trajectory` alternates a gradient step on :math:`\log\sigma` (the path, with a
backtracking line search, projected onto the feasible :math:`\sigma` interval where both
straights are non-negative) with projected gradient steps on the way-points (Barzilai-Borwein
step lengths, Armijo backtracking), until the relative decrease of :math:`J` per round falls
below ``tol``: the paper's iterative re-solving of path and velocity. A new :math:`\sigma`
changes the path length and so the way-point spacing, and with it the goal-speed constraint;
the path step therefore differentiates and line-searches :math:`J` with the way-points
re-projected onto the new constraint, and every velocity candidate is projected too, so
every round lowers :math:`J` (the recorded ``history`` does not increase).

On a straight road (:math:`\kappa \equiv 0`) with :math:`v_0 = v_g = V` and zero end
accelerations, the exact optimum over all trajectories is the minimum-jerk quintic, with
:math:`\int j^2 dt = 720 (D - VT)^2 / T^5` for distance :math:`D` in time :math:`T`
(:func:`min_jerk_cost`); the tests hold the way-point optimum to within 2 % of it.

References:
    A. Botros and S. L. Smith, "Tunable Trajectory Planner Using G3 Curves", arXiv 2106.03836,
    2021 (papers.md row 99): a continuous-curvature-rate path whose minimal-length form is set
    by the second derivative of curvature, a velocity profile discretised into acceleration
    way-points, gradient descent over both, solved alternately, for a comfort/time trade-off.

Deviations from the paper:
    Only the abstract and introduction could be read. The turn shape (four quadratic pieces,
    symmetric), the straight-turn-straight topology, the comfort measure (integrated squared
    longitudinal plus lateral jerk), the linear interpolation between way-points and the
    Barzilai-Borwein step lengths are our choices, not taken from the paper; a maximum
    curvature or speed limit is not imposed (the peak curvature is reported). Poses whose goal
    cannot be reached by one turn (a lane change needs two) are rejected with an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from trainlab.errors import ConfigError, TrainlabError, check_range

_GL_NODES, _GL_WEIGHTS = (torch.tensor(a, dtype=torch.float64)
                          for a in np.polynomial.legendre.leggauss(32))
_TURN_SIGNS = (1.0, -1.0, -1.0, 1.0)


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


@dataclass(frozen=True)
class Pose:
    """A planar pose: position ``(x, y)`` and heading ``theta`` (radians); curvature 0."""

    x: float
    y: float
    theta: float


def _gauss(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes and weights on ``[a, b]`` (differentiable in ``a``, ``b``)."""
    half = (b - a) / 2
    return a + half * (_GL_NODES + 1), half * _GL_WEIGHTS


class G3Path:
    """The straight-turn-straight G3 path from ``start`` to ``goal`` for sharpness ``sigma``
    (a 0-d float64 tensor; gradients flow through every length and position).

    Attributes: ``knots`` (arclengths of the piece boundaries), ``straights`` (the two straight
    lengths), ``turn_length`` (``4 * ell``), ``length``, ``peak_curvature``.

    Raises:
        TrainlabError: the goal is not reachable with one turn at this ``sigma`` (a straight
            length would be negative).
    """

    def __init__(self, start: Pose, goal: Pose, sigma: torch.Tensor):
        self.start, self.goal, self.sigma = start, goal, sigma
        self.delta = _wrap(goal.theta - start.theta)
        self.sign = 1.0 if self.delta >= 0 else -1.0
        ell = ((abs(self.delta) / (2 * sigma)) ** (1 / 3) if self.delta != 0.0
               else torch.zeros((), dtype=torch.float64))
        self.ell = ell
        # pieces of the turn: initial (kappa, kappa', theta) and kappa'' per piece
        k, dk, th = (torch.zeros((), dtype=torch.float64),) * 2 + (
            torch.tensor(start.theta, dtype=torch.float64),)
        self._pieces = []
        disp = torch.zeros(2, dtype=torch.float64)
        for c in _TURN_SIGNS:
            ddk = self.sign * c * sigma
            self._pieces.append((k, dk, th, ddk))
            u, w = _gauss(torch.zeros((), dtype=torch.float64), ell)
            theta_u = th + k * u + dk * u ** 2 / 2 + ddk * u ** 3 / 6
            disp = disp + torch.stack([(w * torch.cos(theta_u)).sum(),
                                       (w * torch.sin(theta_u)).sum()])
            k, dk, th = (k + dk * ell + ddk * ell ** 2 / 2, dk + ddk * ell,
                         th + k * ell + dk * ell ** 2 / 2 + ddk * ell ** 3 / 6)
        self.end_heading = th
        e0 = torch.tensor([math.cos(start.theta), math.sin(start.theta)], dtype=torch.float64)
        e1 = torch.tensor([math.cos(goal.theta), math.sin(goal.theta)], dtype=torch.float64)
        target = torch.tensor([goal.x - start.x, goal.y - start.y], dtype=torch.float64) - disp
        if abs(math.sin(self.delta)) < 1e-12:
            # parallel straights: both lengths along one line; split evenly (no lateral freedom)
            along = target @ e0
            lateral = target @ torch.stack([-e0[1], e0[0]])
            if abs(float(lateral.detach())) > 1e-9 or abs(self.delta) > 1e-12:
                raise TrainlabError("goal not reachable with one G3 turn (a lane change or a "
                                    "U-turn needs more turns)")
            d = torch.stack([along / 2, along / 2])
        else:
            d = torch.linalg.solve(torch.stack([e0, e1], 1), target)
        self.straights = d
        self.turn_length = 4 * ell
        self.length = d.sum() + self.turn_length
        self.peak_curvature = sigma * ell ** 2
        self.knots = torch.cumsum(torch.stack([torch.zeros((), dtype=torch.float64), d[0]]
                                              + [ell] * 4 + [d[1]]), 0)
        self._disp = disp

    @property
    def feasible(self) -> bool:
        return bool((self.straights >= 0).all())

    def curvature(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(kappa, kappa', kappa'')`` at arclengths ``s`` (0 on the straights)."""
        kap, dkap, ddkap = (torch.zeros_like(s) for _ in range(3))
        for i, (k0, dk0, _, ddk) in enumerate(self._pieces):
            lo, hi = self.knots[1 + i], self.knots[2 + i]
            inside = (s >= lo) & (s < hi) if i < 3 else (s >= lo) & (s <= hi)
            u = s - lo
            kap = torch.where(inside, k0 + dk0 * u + ddk * u ** 2 / 2, kap)
            dkap = torch.where(inside, dk0 + ddk * u, dkap)
            ddkap = torch.where(inside, ddk * torch.ones_like(u), ddkap)
        return kap, dkap, ddkap

    def end_pose_error(self) -> float:
        """Distance between the integrated end point and the goal, plus the heading error."""
        e0 = torch.tensor([math.cos(self.start.theta), math.sin(self.start.theta)],
                          dtype=torch.float64)
        e1 = torch.tensor([math.cos(self.goal.theta), math.sin(self.goal.theta)],
                          dtype=torch.float64)
        end = (torch.tensor([self.start.x, self.start.y], dtype=torch.float64)
               + self.straights[0] * e0 + self._disp + self.straights[1] * e1)
        pos = torch.linalg.vector_norm(end - torch.tensor([self.goal.x, self.goal.y],
                                                          dtype=torch.float64))
        return float(pos) + abs(_wrap(float(self.end_heading) - self.goal.theta))


def speed_and_cost(path: G3Path, accel: torch.Tensor, v0: float, weight: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(J, T, comfort)`` of the velocity profile with way-points ``accel`` (all ``M``,
    ends included) along ``path``; ``J = inf`` where the speed reaches zero."""
    m = accel.numel()
    way = path.length * torch.linspace(0, 1, m, dtype=torch.float64)
    h = path.length / (m - 1)
    # quadrature pieces bounded by the way-points and the path's knots; sorting keeps every
    # endpoint differentiable in sigma (Leibniz's rule through the moving limits)
    knots = torch.sort(torch.cat([way, path.knots])).values
    lo, hi = knots[:-1, None], knots[1:, None]
    s = (lo + (hi - lo) / 2 * (_GL_NODES + 1)).reshape(-1)
    w = ((hi - lo) / 2 * _GL_WEIGHTS).reshape(-1)
    idx = torch.clamp((s / h).floor().long(), 0, m - 2)
    u = s - idx * h
    slope = (accel[idx + 1] - accel[idx]) / h
    a = accel[idx] + slope * u
    # integral of a up to s: full intervals (trapezoid, exact for linear a) plus the part
    cum = torch.cat([torch.zeros(1, dtype=torch.float64),
                     torch.cumsum(h * (accel[:-1] + accel[1:]) / 2, 0)])
    integral = cum[idx] + accel[idx] * u + slope * u ** 2 / 2
    v2 = v0 ** 2 + 2 * integral
    if bool((v2 <= 0).any()):
        inf = torch.tensor(math.inf, dtype=torch.float64)
        return inf, inf, inf
    v = v2.sqrt()
    kap, dkap, _ = path.curvature(s)
    travel = (w / v).sum()
    comfort = (w * v * (slope ** 2 + (2 * a * kap + v2 * dkap) ** 2)).sum()
    return travel + weight * comfort, travel, comfort


def min_jerk_cost(distance: float, speed: float, time: float) -> float:
    """Integrated squared jerk of the minimum-jerk motion over ``distance`` in ``time`` with
    speed ``speed`` and zero acceleration at both ends: ``720 (D - V T)^2 / T^5``."""
    return 720.0 * (distance - speed * time) ** 2 / time ** 5


@dataclass
class G3Result:
    """What :func:`plan_g3_trajectory` found: the path's ``sigma``, the way-points
    ``accel``, travel ``time``, ``comfort`` (integrated squared jerk), ``cost``, the path
    ``length``, ``peak_curvature``, ``end_pose_error``, ``history`` (cost per round),
    ``rounds`` and ``converged`` (relative decrease below ``tol``)."""

    sigma: float
    accel: torch.Tensor
    time: float
    comfort: float
    cost: float
    length: float
    peak_curvature: float
    end_pose_error: float
    history: list[float] = field(default_factory=list)
    rounds: int = 0
    converged: bool = False


def _project(accel: torch.Tensor, h: float, v0: float, vg: float) -> torch.Tensor:
    """Ends 0 and ``h * sum(interior) = (vg^2 - v0^2) / 2`` (the goal speed), by the
    Euclidean projection on that affine set."""
    out = accel.clone()
    out[0] = out[-1] = 0.0
    target = (vg ** 2 - v0 ** 2) / (2 * h)
    out[1:-1] += (target - out[1:-1].sum()) / (out.numel() - 2)
    return out


def _sigma_interval(start: Pose, goal: Pose, lo: float, hi: float) -> tuple[float, float]:
    """The feasible ``sigma`` range inside ``[lo, hi]`` (both straights >= 0), by bisection
    on the boundary; feasibility grows with ``sigma`` (a sharper turn is shorter)."""
    def ok(sig: float) -> bool:
        return G3Path(start, goal, torch.tensor(sig, dtype=torch.float64)).feasible
    if not ok(hi):
        raise TrainlabError(f"goal not reachable with one G3 turn for any sigma <= {hi:g}")
    if ok(lo):
        return lo, hi
    a, b = math.log(lo), math.log(hi)
    for _ in range(60):
        mid = (a + b) / 2
        a, b = (a, mid) if ok(math.exp(mid)) else (mid, b)
    return math.exp(b), hi


def plan_g3_trajectory(start: Pose, goal: Pose, *, v0: float, v_goal: float, weight: float,
                       waypoints: int = 16, sigma_bounds: tuple[float, float] = (1e-4, 10.0),
                       rounds: int = 200, velocity_steps: int = 25, tol: float = 1e-10
                       ) -> G3Result:
    """Minimise ``J = T + weight * comfort`` over the path's ``sigma`` and the acceleration
    way-points by alternating gradient descent (module docstring).

    Args:
        start, goal: poses (curvature 0 at both).
        v0, v_goal: speed at the start and at the goal (> 0).
        weight: the comfort weight ``w > 0`` (at 0 the time-only problem has no minimum:
            unbounded accelerations make ``T`` arbitrarily small).
        waypoints: number ``M >= 3`` of acceleration way-points, ends included.
        sigma_bounds: the admissible range of the second derivative of curvature.
        rounds: maximum path/velocity rounds; ``velocity_steps`` gradient steps a round.
        tol: stop when a round lowers ``J`` by less than ``tol * |J|``.

    Returns:
        :class:`G3Result` (``converged`` says whether ``tol`` was reached).
    """
    check_range("v0", v0, low=0.0, low_open=True)
    check_range("v_goal", v_goal, low=0.0, low_open=True)
    check_range("weight", weight, low=0.0, low_open=True)
    check_range("waypoints", waypoints, low=3)
    if not 0 < sigma_bounds[0] < sigma_bounds[1]:
        raise ConfigError(f"sigma_bounds must satisfy 0 < low < high; got {sigma_bounds}")
    lo, hi = _sigma_interval(start, goal, *sigma_bounds)
    log_sig = torch.tensor(math.log(math.sqrt(lo * hi)), dtype=torch.float64)

    def cost(ls: torch.Tensor, acc: torch.Tensor) -> torch.Tensor:
        return speed_and_cost(G3Path(start, goal, ls.exp()), acc, v0, weight)[0]

    def path_cost(ls: torch.Tensor, acc: torch.Tensor) -> torch.Tensor:
        # J with the way-points re-projected for this sigma's way-point spacing: the
        # function the path step lowers (a step on J at fixed way-points could be undone
        # by the projection that follows it)
        path = G3Path(start, goal, ls.exp())
        acc = _project(acc, path.length / (waypoints - 1), v0, v_goal)
        return speed_and_cost(path, acc, v0, weight)[0]

    def grad(fn, x):
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            val = fn(x)
            if not math.isfinite(float(val.detach())):
                return val.detach(), None
            (g,) = torch.autograd.grad(val, x, allow_unused=True)
        return val.detach(), torch.zeros_like(x) if g is None else g

    length0 = float(G3Path(start, goal, log_sig.exp()).length)
    accel = _project(torch.zeros(waypoints, dtype=torch.float64), length0 / (waypoints - 1),
                     v0, v_goal)
    history: list[float] = []
    converged = False
    step_sig, done = 0.1, 0
    for rnd in range(1, rounds + 1):
        done = rnd
        # path: one backtracking gradient step on log(sigma), projected on [lo, hi]
        f0, g = grad(lambda ls, acc=accel: path_cost(ls, acc), log_sig)
        if g is not None and float(g) != 0.0:
            t = step_sig
            while t > 1e-12:
                cand = log_sig - t * g
                cand = cand.clamp(math.log(lo), math.log(hi))
                fc = path_cost(cand, accel).detach()
                if float(fc) <= float(f0) - 1e-4 * float(g * (log_sig - cand)):
                    log_sig, step_sig = cand, min(2 * t, 1.0)
                    break
                t /= 2
        h = float(G3Path(start, goal, log_sig.exp()).length) / (waypoints - 1)
        accel = _project(accel, h, v0, v_goal)
        # velocity: projected gradient steps, Barzilai-Borwein lengths, Armijo backtracking
        prev_x = prev_g = None
        for _ in range(velocity_steps):
            f0, g = grad(lambda acc, ls=log_sig: cost(ls, acc), accel)
            if g is None:
                raise TrainlabError("the velocity profile left the feasible set (speed <= 0)")
            g = _project(g, h, 0.0, 0.0)  # the gradient's component inside the constraint set
            if float(g.norm()) == 0.0:
                break
            t = 1.0 / max(float(g.abs().max()), 1e-12)
            if prev_x is not None:
                dx, dg = accel - prev_x, g - prev_g
                if float(dx @ dg) > 0:
                    t = float(dx @ dx) / float(dx @ dg)
            prev_x, prev_g = accel, g
            while t > 1e-16:
                # the step keeps the goal-speed constraint only up to g's rounding, which a
                # long step (t ~ 1e12 once g is at rounding level) would scale up: project
                cand = _project(accel - t * g, h, v0, v_goal)
                fc = cost(log_sig, cand)
                if math.isfinite(float(fc)) and float(fc) <= float(f0) - 1e-4 * t * float(g @ g):
                    accel = cand
                    break
                t /= 2
            else:
                break
        history.append(float(cost(log_sig, accel)))
        if len(history) > 1 and history[-2] - history[-1] <= tol * abs(history[-1]):
            converged = True
            break
    path = G3Path(start, goal, log_sig.exp())
    j, travel, comfort = speed_and_cost(path, accel, v0, weight)
    return G3Result(sigma=float(log_sig.exp()), accel=accel.detach(), time=float(travel),
                    comfort=float(comfort), cost=float(j), length=float(path.length),
                    peak_curvature=float(path.peak_curvature),
                    end_pose_error=path.end_pose_error(), history=history, rounds=done,
                    converged=converged)
