"""On a bilevel problem whose lower level has many solutions, plain unrolled hypergradients
converge to a wrong point while bilevel descent aggregation reaches the optimistic solution
(Liu, Mu, Yuan, Zeng, Zhang, "A Generic First-Order Algorithmic Framework for Bi-Level
Programming Beyond Lower-Level Singleton", ICML 2020; papers.md row 88)."""

from __future__ import annotations

from typing import Any

import torch

from trainlab.bilevel import bda, bda_counterexample
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon


class BDANonSingleton(Phenomenon):
    """The paper's counter-example with ``n = 1`` (:func:`~trainlab.bilevel.bda_counterexample`):
    optimistic solution ``x = y1 = y2 = 1``, ``F = 0``; from ``x0 = 0``, ``y0 = 0``, ``T = 20``
    inner steps, ``s_l = s_u = 0.9``; plain unrolling (``alpha = 0``, outer lr 0.3, 60 steps)
    and BDA (``alpha = 0.5``, outer lr 0.5, 80 steps quick, 300 full).

    Pass criterion: plain unrolling stops at ``x = 0.5`` (within 1e-3) with ``F = 1/16``
    (within 1e-3), the answer of ``min x^4/2 + (x-1)^4/2`` since ``y2`` never moves; BDA ends
    with ``F < 1e-3`` and ``|x - 1| < 0.1``.

    Deviations from the paper: the paper's counter-example at n = 1 (see above); the step sizes,
    aggregation weight and step counts are this library's choices for a quick, deterministic check,
    not values taken from the paper's experiments (not re-read for this paragraph).
    """

    name = "bda-non-singleton"
    papers = (88,)
    claim = ("Without a lower-level singleton, plain unrolled hypergradients converge to a "
             "wrong point; bilevel descent aggregation reaches the optimistic solution.")
    paper_figure = ("the paper's counter-example to the lower-level-singleton assumption (section "
                    "and figure numbers not re-read)")
    scale_downs = ("the counter-example at n = 1",
                   "300 BDA outer steps (quick: 80)")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        prob = bda_counterexample(1)
        x0, y0 = torch.zeros(1, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
        plain = bda(prob, x0, y0, inner_steps=20, alpha=0.0, s_l=0.9, s_u=0.9, outer_lr=0.3,
                    outer_steps=60)
        agg = bda(prob, x0, y0, inner_steps=20, alpha=0.5, s_l=0.9, s_u=0.9, outer_lr=0.5,
                  outer_steps=80 if quick else 300)
        return {"plain_x": float(plain.x), "plain_F": float(plain.outer_values[-1]),
                "bda_x": float(agg.x), "bda_F": float(agg.outer_values[-1]),
                "plain_curve": plain.outer_values.numpy(), "bda_curve": agg.outer_values.numpy()}

    def check(self, data: dict[str, Any]) -> list[Check]:
        return [
            Check("plain unrolling x", data["plain_x"], "0.5 +- 1e-3",
                  abs(data["plain_x"] - 0.5) < 1e-3),
            Check("plain unrolling F", data["plain_F"], "1/16 +- 1e-3",
                  abs(data["plain_F"] - 1 / 16) < 1e-3),
            Check("BDA F", data["bda_F"], "< 1e-3", data["bda_F"] < 1e-3),
            Check("BDA |x - 1|", abs(data["bda_x"] - 1), "< 0.1", abs(data["bda_x"] - 1) < 0.1),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.semilogy(data["plain_curve"], label="plain unrolling (alpha = 0)")
        ax.semilogy(data["bda_curve"], label="BDA (alpha = 0.5)")
        ax.set(xlabel="outer step", ylabel="upper-level objective F")
        ax.legend(fontsize=7)
        return fig


PHENOMENA.register("bda-non-singleton", BDANonSingleton, papers=(88,), reproduces=True,
                   summary="plain unrolling fails a non-singleton lower level; BDA solves it")
