"""Differentiable sorting networks relaxed with sigmoids whose derivative decays like 1/x^2
(Cauchy, reciprocal, optimal) are monotonic: no entry of the Jacobian of the sorted values is
negative, while the logistic, ART and Gaussian relaxations produce negative entries
(Petersen, Borgelt, Kuehne, Deussen, "Monotonic Differentiable Sorting Networks", ICLR 2022;
papers.md row 113)."""

from __future__ import annotations

from typing import Any

import torch

from trainlab.models.sorting_network import MONOTONIC, SIGMOIDS, DiffSortNet
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon


class MonotonicSorting(Phenomenon):
    """Odd-even network, ``n = 8``, steepness 10 (the paper's default), inputs
    ``x ~ N(0, 0.3^2)``: the smallest entry of ``d sort(x) / dx`` over 10 draws (quick) or 100
    (full), for each relaxation.

    Pass criterion (the paper's theorem and its counter-examples): the minimum is >= -1e-12
    for the three monotonic sigmoids and < -0.05 for each of the three others.

    Deviations from the paper: one network size (n = 8) and input distribution chosen here;
    steepness 10 is the paper's default as stated above; the check is the sign of the Jacobian's
    entries, the paper's monotonicity property, not its sorting benchmarks.
    """

    name = "monotonic-sorting"
    papers = (113,)
    claim = ("Sorting networks relaxed with Cauchy, reciprocal or optimal sigmoids are "
             "monotonic (non-negative Jacobian); logistic, ART and Gaussian ones are not.")
    paper_figure = ("the monotonicity theorem for sigmoids with 1/x^2 derivative decay and the "
                    "non-monotonic logistic/ART/Gaussian counter-examples (theorem numbers not "
                    "re-read)")
    scale_downs = ("an 8-input odd-even network checked on 100 random inputs (quick: 10)",)

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        draws = [0.3 * torch.randn(8, dtype=torch.float64, generator=g)
                 for _ in range(10 if quick else 100)]
        out = {}
        for name in SIGMOIDS:
            net = DiffSortNet(8, sigmoid=name)
            out[name] = min(float(torch.autograd.functional.jacobian(
                lambda v, net=net: net(v.unsqueeze(0))[0][0], x).min()) for x in draws)
        return {"min_jacobian": out}

    def check(self, data: dict[str, Any]) -> list[Check]:
        mins = data["min_jacobian"]
        return [Check(f"min d sort / dx, {n}", mins[n], ">= -1e-12" if n in MONOTONIC
                      else "< -0.05", mins[n] >= -1e-12 if n in MONOTONIC else mins[n] < -0.05)
                for n in SIGMOIDS]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        names = list(data["min_jacobian"])
        ax.bar(names, [data["min_jacobian"][n] for n in names])
        ax.axhline(0, c="k", lw=0.8)
        ax.set(ylabel="smallest Jacobian entry")
        ax.tick_params(axis="x", labelsize=7)
        return fig


PHENOMENA.register("monotonic-sorting", MonotonicSorting, papers=(113,), reproduces=True,
                   summary="Cauchy/reciprocal/optimal sorting relaxations: no negative gradient")
