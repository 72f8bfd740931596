"""Actor-critic with randomised Gaussian policies learns the optimal control of a stochastic
problem with an exit time, without differentiating the exit time (Hamdouche,
Henry-Labordère, Pham, "Policy gradient learning methods for stochastic control with exit
time and applications to share repurchase pricing", 2023; papers.md row 90)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.optim.procedures.hamdouche2023_exit_control import (
    ExitProblem,
    actor_critic,
    value_estimate,
)
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon

# V(0, 0.5) of the optimal control a = +1, by Crank-Nicolson on the HJB equation
# (400 x 1000 grid; the tests recompute it): the reference value of this toy.
OPTIMAL_VALUE = 0.95974


class _Net(nn.Module):
    def __init__(self, squash: bool, g: torch.Generator):
        super().__init__()
        self.l1, self.l2 = nn.Linear(2, 16).double(), nn.Linear(16, 1).double()
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64))
            if squash:  # the actor starts at the zero control
                self.l2.weight.zero_()
                self.l2.bias.zero_()
        self.squash = squash

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        z = self.l2(torch.tanh(self.l1(torch.stack([t, x], -1)))).squeeze(-1)
        return torch.tanh(z) if self.squash else z


class ExitTimeActorCritic(Phenomenon):
    """``dX = a dt + 0.5 dW``, ``|a| <= 1`` on ``(0, 1)`` from ``x0 = 0.5`` up to ``T = 1``;
    payoff 1 at the upper wall, 0 at the lower, ``X_T`` at the horizon. The zero control is
    worth exactly 0.5 (a martingale), the optimal ``a = +1`` about 0.9597. Actor (tanh MLP
    mean, policy std 0.5) and critic train for 10 (quick) or 60 (full) iterations of 256
    paths on a grid of ``dt = 0.02``; the learned mean control is then evaluated on 4000
    paths.

    Pass criterion: the learned control's value exceeds 0.5 by more than 3 standard errors
    and is within 0.05 of the optimal value (the grid's exit-check bias is below 0.01).

    Deviations from the paper: a one-dimensional controlled diffusion with a known optimal control
    stands in for the paper's share-repurchase application; network sizes, policy standard
    deviation, time grid and iteration counts are this library's.
    """

    name = "exit-time-actor-critic"
    papers = (90,)
    claim = ("Actor-critic with randomised policies learns a near-optimal control for a "
             "stochastic control problem with an exit time.")
    paper_figure = ("the abstract's actor-critic claim for exit-time control; the paper's figures "
                    "and tables were not re-read")
    scale_downs = ("a 1-D controlled diffusion on (0, 1) with a known optimal value, not the "
                   "paper's share-repurchase application",
                   "60 actor-critic iterations of 256 paths (quick: 10)")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        problem = ExitProblem(dt=0.02)
        actor, critic = _Net(True, g), _Net(False, g)
        hist = actor_critic(problem, actor, critic, iterations=10 if quick else 60, paths=256,
                            std=0.5, lr_actor=3e-2, lr_critic=3e-2, generator=g)
        value, se = value_estimate(problem, lambda t, x: actor(t, x), paths=4000, generator=g)
        return {"history": np.array(hist), "value": value, "se": se}

    def check(self, data: dict[str, Any]) -> list[Check]:
        v, se = data["value"], data["se"]
        return [Check("(J - 0.5) / SE", (v - 0.5) / se, "> 3 (better than no control)",
                      (v - 0.5) / se > 3),
                Check("optimal value - J", OPTIMAL_VALUE - v, "< 0.05", OPTIMAL_VALUE - v < 0.05)]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(data["history"], label="batch mean payoff (random policy)")
        ax.axhline(OPTIMAL_VALUE, c="k", ls="--", label="optimal value")
        ax.axhline(0.5, c="gray", ls=":", label="no control")
        ax.set(xlabel="iteration", ylabel="payoff")
        ax.legend(fontsize=7)
        return fig


PHENOMENA.register("exit-time-actor-critic", ExitTimeActorCritic, papers=(90,), reproduces=True,
                   summary="actor-critic learns near-optimal control with an exit time")
