"""From a cold start (a point mass) the proximal sampler's law approaches the log-concave
target geometrically: on a Gaussian its W2 distance to exact samples falls to the sampling
noise floor within a few steps ("Faster logconcave sampling from a cold start", arXiv
2505.01937, 2025; papers.md row 109)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import ot
import torch

from trainlab.optim.procedures.proximal_sampler import gaussian_law_after, proximal_sampler
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon


def _w2(a: torch.Tensor, b: torch.Tensor) -> float:
    w = torch.full((a.shape[0],), 1.0 / a.shape[0], dtype=a.dtype)
    return float(ot.emd2(w, w, ot.dist(a, b))) ** 0.5


class ProximalSamplerColdStart(Phenomenon):
    """Target ``N(0, I_2)``, step ``h = 0.5``, 1000 chains (quick) or 3000 (full) started at 0;
    W2 (POT, exact optimal transport) between the chains after ``k = 1, 2, 4, 8`` steps and
    exact target samples, beside the closed-form W2 ``sqrt(d) (1 - sqrt(1 - a^(2k)))`` of the
    AR(1) law and the noise floor (W2 between two exact samples).

    Pass criterion: after one step W2 is at least twice the noise floor (the point mass is
    far from the target), W2 stays within the noise floor of the closed form
    (|measured - closed| <= 1.5 floor + 0.05), and at ``k = 8`` is within 1.5x the floor.

    Deviations from the paper: a two-dimensional standard Gaussian target (where each step's law is
    known in closed form) instead of general log-concave targets; step size, chain counts and
    tolerances are this library's.
    """

    name = "proximal-sampler-cold-start"
    papers = (109,)
    claim = ("The proximal sampler mixes from a point-mass cold start to a log-concave target "
             "geometrically (W2 to exact samples).")
    paper_figure = ("the abstract's cold-start guarantee (figures not read: the claim is a "
                    "theorem)")
    scale_downs = ("a 2-D standard Gaussian target",
                   "3000 chains (quick: 1000), 8 steps")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        n, d, h = (1000 if quick else 3000), 2, 0.5
        ref = torch.randn(n, d, generator=g, dtype=torch.float64)
        floor = _w2(torch.randn(n, d, generator=g, dtype=torch.float64), ref)
        steps = [1, 2, 4, 8]
        measured, closed = [], []
        x, done = torch.zeros(n, d, dtype=torch.float64), 0
        for k in steps:
            x, _ = proximal_sampler(lambda z: 0.5 * (z * z).sum(1), x, h=h, steps=k - done,
                                    generator=g)
            done = k
            measured.append(_w2(x, ref))
            closed.append(math.sqrt(d) * (1 - math.sqrt(gaussian_law_after(k, h=h)[1])))
        return {"steps": steps, "w2": np.array(measured), "closed": np.array(closed),
                "floor": floor}

    def check(self, data: dict[str, Any]) -> list[Check]:
        w2, closed, floor = data["w2"], data["closed"], data["floor"]
        gap = float(np.max(np.abs(w2 - closed)))
        return [Check("W2 after 1 step / noise floor", float(w2[0] / floor), ">= 2 (not mixed)",
                      w2[0] >= 2 * floor),
                Check("max |W2 - closed form|", gap,
                      f"<= 1.5 floor + 0.05 = {1.5 * floor + 0.05:.3f}", gap <= 1.5 * floor + 0.05),
                Check("W2 after 8 steps / noise floor", float(w2[-1] / floor), "<= 1.5",
                      w2[-1] <= 1.5 * floor)]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.semilogy(data["steps"], data["w2"], "o-", label="measured W2")
        ax.semilogy(data["steps"], np.maximum(data["closed"], 1e-6), "k--", label="closed form")
        ax.axhline(data["floor"], c="gray", ls=":", label="noise floor")
        ax.set(xlabel="steps from x0 = 0", ylabel="W2 to N(0, I)")
        ax.legend(fontsize=7)
        return fig


PHENOMENA.register("proximal-sampler-cold-start", ProximalSamplerColdStart, papers=(109,),
                   reproduces=True,
                   summary="proximal sampler mixes from a point mass: W2 vs the AR(1) law")
