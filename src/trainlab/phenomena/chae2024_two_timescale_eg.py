"""Two-timescale extragradient converges to a local minimax point with a degenerate
max-player Hessian, where two-timescale GDA fails for every timescale ratio (Chae, Kim, Kim,
"Two-timescale Extragradient for Finding Local Minimax Points", ICLR 2024; papers.md row 110)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainlab.minimax import local_radii, two_timescale_extragradient, two_timescale_gda
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon


def _operator(z: torch.Tensor) -> torch.Tensor:
    # F = (df/dx, -df/dy) of f = -x^2/4 + x y + x^3/3: (0, 0) is local minimax with
    # d2f/dy2 = 0 there (degenerate); the cubic term makes the game non-quadratic
    x, y = z[:1], z[1:]
    return torch.cat([-0.5 * x + y + x**2, -x])


def _escape(norms: np.ndarray, radius: float = 1.0) -> float:
    """The first step with ||z_k|| > radius (non-finite counts), or -1 if none."""
    out = np.flatnonzero(~(norms <= radius))
    return float(out[0]) if out.size else -1.0


class TwoTimescaleExtragradient(Phenomenon):
    """``f(x, y) = -x^2/4 + x y + x^3/3`` from ``z0 = (0.05, 0.05)``; max step ``eta = 0.9``,
    min step ``eta / tau`` for ``tau`` in (1, 4, 16); 600 EG steps quick, 3000 full (GDA: 200).

    Pass criterion (the paper's claim, for this instance): GDA leaves the ball of radius 1
    around the point within 200 steps for every ``tau`` (linearised radius > 1); EG with
    ``tau = 1`` leaves it too, but with ``tau = 4`` and ``16`` ends at
    ``||z_N|| < 0.05 ||z_0||`` (radius < 1).

    Deviations from the paper: one two-dimensional cubic instance with a degenerate max-player
    Hessian, chosen here, with this library's step size, timescale ratios and step counts; the
    paper's other examples are not reproduced.
    """

    name = "two-timescale-extragradient"
    papers = (110,)
    claim = ("Two-timescale extragradient converges to a local minimax point whose "
             "max-player Hessian is degenerate, where two-timescale GDA fails for every tau.")
    paper_figure = ("the abstract's claim (two-timescale EG reaches local minimax points with a "
                    "degenerate max-player Hessian where two-timescale GDA fails); theorem "
                    "numbers not re-read")
    scale_downs = ("one 1+1-dimensional instance chosen here",
                   "tau in (1, 4, 16), 3000 EG steps (quick: 600)")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        op = _operator
        jac = torch.func.jacfwd(op)(torch.zeros(2, dtype=torch.float64))
        z0 = torch.tensor([0.05, 0.05], dtype=torch.float64)
        steps = 600 if quick else 3000
        out: dict[str, Any] = {"tau": [1.0, 4.0, 16.0], "eg": {}, "gda": {}, "radii": {}}
        for tau in out["tau"]:
            eg = two_timescale_extragradient(op, z0, dim_x=1, lr=0.9, tau=tau, steps=steps)
            gd = two_timescale_gda(op, z0, dim_x=1, lr=0.9, tau=tau, steps=200)
            out["eg"][tau] = eg.iterates.norm(dim=1).numpy()
            out["gda"][tau] = gd.iterates.norm(dim=1).numpy()
            out["radii"][tau] = local_radii(jac, dim_x=1, lr=0.9, tau=tau)
        return out

    def check(self, data: dict[str, Any]) -> list[Check]:
        checks = []
        for tau in data["tau"]:
            k = _escape(data["gda"][tau])
            checks.append(Check(f"GDA first step with ||z_k|| > 1, tau={tau:g}", k,
                                ">= 0 (leaves the neighbourhood)", k >= 0))
        k = _escape(data["eg"][1.0])
        checks.append(Check("EG first step with ||z_k|| > 1, tau=1", k, ">= 0", k >= 0))
        for tau in (4.0, 16.0):
            r = float(data["eg"][tau][-1] / data["eg"][tau][0])
            checks.append(Check(f"EG ||z_N|| / ||z_0||, tau={tau:g}", r, "< 0.05", r < 0.05))
            rad = data["radii"][tau]["extragradient"]
            checks.append(Check(f"EG linearised radius, tau={tau:g}", rad, "< 1", rad < 1))
        return checks

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        for tau in data["tau"]:
            ax.semilogy(np.nan_to_num(data["eg"][tau], nan=1e6).clip(max=1e6),
                        label=f"EG tau={tau:g}")
            ax.semilogy(np.nan_to_num(data["gda"][tau], nan=1e6).clip(max=1e6), "--",
                        label=f"GDA tau={tau:g}")
        ax.set(xlabel="iteration", ylabel="||z_k||")
        ax.legend(fontsize=7)
        return fig


PHENOMENA.register("two-timescale-extragradient", TwoTimescaleExtragradient, papers=(110,),
                   reproduces=True,
                   summary="two-timescale EG finds a degenerate local minimax point; GDA fails")
