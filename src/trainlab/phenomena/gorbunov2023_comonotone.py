"""Beyond monotonicity: on a negatively comonotone game proximal point converges exactly when
its step exceeds 2 rho, and extragradient needs a smaller second step (gamma2 < gamma1 - 2 rho)
while the classic equal-step version and GDA diverge (Gorbunov, Taylor, Horváth, Gidel,
"Convergence of Proximal Point and Extragradient-Based Methods Beyond Monotonicity: the Case of
Negative Comonotonicity", ICML 2023; papers.md row 91)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainlab.minimax import (
    comonotonicity,
    extragradient,
    extragradient_bound,
    gda,
    linear_game,
    linear_operator,
    proximal_point,
    proximal_point_bound,
)
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon


class ComonotoneProximalExtragradient(Phenomenon):
    """The game ``f = a/2 (x^2 - y^2) + b x y`` with ``a = -1, b = 3``: nonconvex-nonconcave,
    ``rho = 0.1``-negatively comonotone, ``L = sqrt(10)``; start ``z0 = (1, -0.5)``.

    Runs (200 steps quick, 500 full): proximal point at ``gamma = 0.15 < 2 rho`` and
    ``gamma = 0.25 > 2 rho``; extragradient with ``gamma1 = 1/L`` and ``gamma2 = gamma1``
    (classic) or ``gamma2 = (gamma1 - 2 rho) / 2``; GDA at ``gamma = 0.1``.

    Pass criterion (the paper's step-size conditions, and its O(1/N) guarantees): PP below
    ``2 rho`` and classic EG and GDA end with ``||F(z_N)|| > ||F(z_0)||``; PP above ``2 rho``
    and EG with the smaller second step end below ``1e-3 ||F(z_0)||``; their squared
    residuals never exceed the O(1/N) bounds (ratio of measured to bound <= 1).

    Deviations from the paper: a two-dimensional quadratic game chosen here to be negatively
    comonotone (constants above), not an instance from the paper; the step sizes follow the paper's
    conditions, and the step counts and tolerances are this library's.
    """

    name = "comonotone-proximal-extragradient"
    papers = (91,)
    claim = ("On a negatively comonotone game, proximal point converges iff gamma > 2 rho and "
             "extragradient converges with gamma2 < gamma1 - 2 rho, where equal steps and "
             "GDA diverge.")
    paper_figure = ("the step-size conditions and O(1/N) bounds of the paper's proximal-point and "
                    "extragradient theorems (theorem numbers not re-read)")
    scale_downs = ("one 2-D linear game chosen here; the paper's claims are worst-case theorems",
                   "500 steps (quick: 200)")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        steps = 200 if quick else 500
        a = linear_game(-1.0, 3.0)
        rho, lip = comonotonicity(a)
        op = linear_operator(a)
        z0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
        g1 = 1 / lip
        runs = {
            "pp 0.15": proximal_point(op, z0, gamma=0.15, steps=steps),
            "pp 0.25": proximal_point(op, z0, gamma=0.25, steps=steps),
            "eg equal": extragradient(op, z0, gamma1=g1, steps=steps),
            "eg small": extragradient(op, z0, gamma1=g1, gamma2=(g1 - 2 * rho) / 2, steps=steps),
            "gda": gda(op, z0, gamma=0.1, steps=steps),
        }
        d = float(z0.norm())
        n = np.arange(1, steps + 1)
        pp_bound = np.array([proximal_point_bound(0.25, rho, d, k) for k in n])
        eg_bound = np.array([extragradient_bound(g1, (g1 - 2 * rho) / 2, rho, lip, d, k)
                             for k in n])
        best = torch.cummin(runs["eg small"].extrapolated ** 2, 0).values.numpy()
        return {"residuals": {k: r.residuals.numpy() for k, r in runs.items()},
                "pp_ratio": float(np.max(runs["pp 0.25"].residuals.numpy()[1:] ** 2 / pp_bound)),
                "eg_ratio": float(np.max(best / eg_bound)), "rho": rho, "lipschitz": lip}

    def check(self, data: dict[str, Any]) -> list[Check]:
        res = {k: float(v[-1] / v[0]) for k, v in data["residuals"].items()}
        out = [Check(f"||F(z_N)|| / ||F(z_0)||, {k}", res[k], "> 1 (diverges)", res[k] > 1)
               for k in ("pp 0.15", "eg equal", "gda")]
        out += [Check(f"||F(z_N)|| / ||F(z_0)||, {k}", res[k], "< 1e-3 (converges)",
                      res[k] < 1e-3) for k in ("pp 0.25", "eg small")]
        out += [Check("PP max ||F(z_N)||^2 / bound", data["pp_ratio"], "<= 1",
                      data["pp_ratio"] <= 1),
                Check("EG max min_k ||F(z~_k)||^2 / bound", data["eg_ratio"], "<= 1",
                      data["eg_ratio"] <= 1)]
        return out

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        for k, v in data["residuals"].items():
            ax.semilogy(np.maximum(v, 1e-300), label=k)
        ax.set(xlabel="iteration", ylabel="||F(z_k)||", ylim=(1e-12, 1e6),
               title=f"rho = {data['rho']:.2f}, 1/L = {1 / data['lipschitz']:.3f}")
        ax.legend(fontsize=7)
        return fig


PHENOMENA.register("comonotone-proximal-extragradient", ComonotoneProximalExtragradient,
                   papers=(91,), reproduces=True,
                   summary="PP needs gamma > 2 rho, EG needs gamma2 < gamma1 - 2 rho; GDA diverges")

