r"""Policy gradient and actor-critic with randomised (Gaussian) policies for stochastic control
with an exit time.

Maximise :math:`J(\theta) = \mathbb{E}[g(X_{\tau})]` over feedback controls, with
:math:`dX = \alpha\,dt + \sigma\,dW`, :math:`|\alpha| \le \bar a`, on the interval
:math:`O = (\ell, u)`, :math:`\tau = \inf\{t: X_t \notin O\} \wedge T`. On the time grid
:math:`t_i = i\,\Delta t` the action is drawn from
:math:`\pi_\theta(\cdot \mid t_i, X_{t_i}) = \mathcal{N}(\mu_\theta(t_i, X_{t_i}), s^2)` and
clipped to :math:`[-\bar a, \bar a]` by the dynamics, so the exit time is never
differentiated:

.. math::
    \nabla_\theta J = \mathbb{E}\Big[\sum_{t_i < \tau} A_i\,
        \nabla_\theta \log \pi_\theta(a_i \mid t_i, X_{t_i})\Big],

with :math:`A_i = g(X_\tau) - b` (policy gradient with a baseline) or the temporal difference
:math:`A_i = V_\phi(t_{i+1}, X_{t_{i+1}}) - V_\phi(t_i, X_{t_i})` of a critic fitted to the
realised payoffs (actor-critic; :math:`V_\phi = g` once the path has exited).

References:
    Hamdouche, Henry-Labordère, Pham. "Policy gradient learning methods for stochastic
    control with exit time and applications to share repurchase pricing", arXiv 2302.07320,
    2023 (papers.md row 90): randomised policies, the score-function gradient over the
    exit-stopped path, the actor-critic variant.

Deviations from the paper:
    Euler steps with exits checked on the grid; a fixed policy standard deviation ``s``
    (the paper's randomisation schedule was not read); the critic is fitted by least
    squares to Monte Carlo payoffs of the current batch; no jumps. The test problem is a
    toy with a known optimal control (drift at the bound), not the share-repurchase model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from trainlab.errors import check_range

MeanFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ExitProblem:
    """``dX = a dt + sigma dW`` on ``(low, high)`` up to ``horizon``; payoff ``exit_low`` /
    ``exit_high`` at the walls and ``X_T`` at the horizon (the tests' toy)."""

    x0: float = 0.5
    horizon: float = 1.0
    dt: float = 0.01
    sigma: float = 0.5
    bound: float = 1.0
    low: float = 0.0
    high: float = 1.0
    exit_low: float = 0.0
    exit_high: float = 1.0

    @property
    def steps(self) -> int:
        return round(self.horizon / self.dt)


@dataclass(frozen=True)
class Rollout:
    """A batch of paths: ``times`` ``(K,)``, ``states`` ``(n, K)`` before each step,
    ``log_probs`` ``(n, K)``, ``alive`` ``(n, K)`` (step taken before exit),
    ``next_states`` ``(n, K)``, ``done`` ``(n, K)`` (exited or at the horizon after the step),
    ``payoff`` ``(n,)``."""

    times: torch.Tensor
    states: torch.Tensor
    log_probs: torch.Tensor
    alive: torch.Tensor
    next_states: torch.Tensor
    done: torch.Tensor
    payoff: torch.Tensor


def rollout(problem: ExitProblem, mean_fn: MeanFn, *, std: float, paths: int,
            generator: torch.Generator | None = None) -> Rollout:
    """Simulate ``paths`` controlled paths (log-probabilities differentiable in ``mean_fn``).

    ``std = 0`` runs the deterministic feedback control ``mean_fn`` (log-probabilities 0).
    """
    check_range("std", std, low=0.0, owner="rollout")
    check_range("paths", paths, low=1, owner="rollout")
    p = problem
    x = torch.full((paths,), p.x0, dtype=torch.float64)
    alive = torch.ones(paths, dtype=torch.bool)
    payoff = torch.zeros(paths, dtype=torch.float64)
    states, logps, alives, nexts, dones, times = [], [], [], [], [], []
    for i in range(p.steps):
        t = torch.full_like(x, i * p.dt)
        mu = mean_fn(t, x)
        noise = torch.randn(paths, generator=generator, dtype=torch.float64)
        a = (mu + std * noise).detach()
        if std > 0:
            logp = -0.5 * ((a - mu) / std) ** 2 - math.log(std * math.sqrt(2 * math.pi))
        else:
            logp = torch.zeros_like(x)
        step = a.clamp(-p.bound, p.bound) * p.dt + p.sigma * math.sqrt(p.dt) * torch.randn(
            paths, generator=generator, dtype=torch.float64)
        x_new = torch.where(alive, x + step, x)
        hit_low, hit_high = alive & (x_new <= p.low), alive & (x_new >= p.high)
        payoff = torch.where(hit_low, p.exit_low, torch.where(hit_high, p.exit_high, payoff))
        last = i == p.steps - 1
        done = hit_low | hit_high | (alive & last)
        states.append(x)
        logps.append(logp)
        alives.append(alive)
        nexts.append(x_new.clamp(p.low, p.high))
        dones.append(done)
        times.append(i * p.dt)
        alive = alive & ~hit_low & ~hit_high
        x = x_new
    payoff = torch.where(alive, x, payoff)  # still inside at the horizon: g(X_T) = X_T
    return Rollout(torch.tensor(times, dtype=torch.float64), torch.stack(states, 1),
                   torch.stack(logps, 1), torch.stack(alives, 1), torch.stack(nexts, 1),
                   torch.stack(dones, 1), payoff)


def value_estimate(problem: ExitProblem, mean_fn: MeanFn, *, paths: int, std: float = 0.0,
                   generator: torch.Generator | None = None) -> tuple[float, float]:
    """Monte Carlo ``J`` and its standard error."""
    with torch.no_grad():
        pay = rollout(problem, mean_fn, std=std, paths=paths, generator=generator).payoff
    return float(pay.mean()), float(pay.std() / math.sqrt(paths))


def policy_gradient_loss(roll: Rollout, *, baseline: float | None = None) -> torch.Tensor:
    """``-mean_paths sum_{t_i < tau} (g - b) log pi`` (its gradient estimates ``-grad J``)."""
    b = float(roll.payoff.mean()) if baseline is None else baseline
    adv = (roll.payoff - b).unsqueeze(1)
    return -(adv * roll.log_probs * roll.alive).sum(1).mean()


def actor_critic(problem: ExitProblem, actor: nn.Module, critic: nn.Module, *,
                 iterations: int, paths: int = 256, std: float = 0.3, lr_actor: float = 1e-2,
                 lr_critic: float = 1e-2, generator: torch.Generator | None = None
                 ) -> list[float]:
    """Train ``actor`` (``(t, x) -> mean action``, in place) with TD advantages from
    ``critic`` (``(t, x) -> V``, fitted to the realised payoffs). Returns the mean payoff of
    every batch."""
    check_range("iterations", iterations, low=0, owner="actor_critic")
    opt_a = torch.optim.Adam(actor.parameters(), lr=lr_actor)
    opt_c = torch.optim.Adam(critic.parameters(), lr=lr_critic)
    history = []
    for _ in range(iterations):
        roll = rollout(problem, lambda t, x: actor(t, x), std=std, paths=paths,
                       generator=generator)
        mask = roll.alive.to(torch.float64)
        t = roll.times.expand_as(roll.states)
        v_now = critic(t, roll.states)
        opt_c.zero_grad()
        (((v_now - roll.payoff.unsqueeze(1)) ** 2 * mask).sum() / mask.sum()).backward()
        opt_c.step()
        with torch.no_grad():
            v_now = critic(t, roll.states)
            v_next = torch.where(roll.done, roll.payoff.unsqueeze(1),
                                 critic(t + problem.dt, roll.next_states))
            adv = (v_next - v_now) * mask
        opt_a.zero_grad()
        (-(adv * roll.log_probs).sum(1).mean()).backward()
        opt_a.step()
        history.append(float(roll.payoff.mean()))
    return history
