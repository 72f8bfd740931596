"""Optimising a sampler's parameters in one loop, sampling and updating together, beats
re-sampling to convergence for every update at an equal sampling budget (Marion et al.,
"Implicit Diffusion: Efficient Optimization through Stochastic Sampling", AISTATS 2025;
papers.md row 119)."""

from __future__ import annotations

from typing import Any

import torch

from trainlab.diffusion.marion2024_implicit_diffusion import (
    component_rewards,
    exact_objective,
    hexagon_centres,
    nested_loop,
    single_loop,
)
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, seed_effect_check


class ImplicitDiffusionSingleLoop(Phenomenon):
    """The paper's released Langevin experiment (:mod:`trainlab.diffusion.marion2024_implicit_
    diffusion`): six-component mixture energy with softmax(theta) weights, theta_0 = (1.5, 0,
    1.5, 0, 1.5, 0), 1000 particles, step 0.2, learning rate 0.1, 5000 Langevin steps (quick:
    1000). Baseline: the nested loop at the same number of Langevin steps, with 20 inner
    steps per update. The objective F(theta) = E_pi[R] is evaluated exactly (mixture x
    quadrature), not from the particles. Seeds 0, 1, 2 (quick: seed 0).

    Criterion (the paper's claim that the single loop reaches a better objective than the
    nested loop at the same sampling cost; written before the run): per seed d = F(single) -
    F(nested) at the equal budget; PASS iff mean(d) exceeds its seed half-range (quick:
    d > 0). An earlier version asked for d >= 0.05 and F(single) >= 2 F(theta_0), thresholds
    chosen after exploration; they are dropped.

    Result (full, 3 seeds): PASS. d = 0.170 +- 0.0001 (F(single) about 0.294, the best
    possible 0.298; F(nested) about 0.125; F(theta_0) = 0.072). 118 s on the loaded machine
    (load ~15; 21 s CPU), about 20 s idle. Quick (1000 steps): d = 0.101, PASS.

    Deviations from the paper: the paper's released Langevin experiment at its settings (above),
    with the objective evaluated exactly by quadrature instead of from the particles and a
    nested-loop baseline of 20 inner steps chosen here; the criterion is this library's.
    """

    name = "implicit-diffusion-single-loop"
    papers = (119,)
    claim = ("Optimising the parameters of a Langevin sampler through its samples with one "
             "loop that interleaves sampling and parameter updates reaches a better objective "
             "than the nested loop (sample to convergence, then update) at the same cost.")
    paper_figure = ("the Langevin reward-training experiment of Sec. 5 (single loop vs nested "
                    "loop at equal steps; figure number not readable here), settings from "
                    "the authors' released code")
    scale_downs = ("none in full mode: the paper's released Langevin experiment (5000 steps), "
                   "3 seeds",
                   "quick: 1000 Langevin steps, 1 seed")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        c = hexagon_centres()
        theta0 = torch.tensor([1.5, 0, 1.5, 0, 1.5, 0], dtype=torch.float64)
        steps = 1000 if quick else 5000
        rk = component_rewards(c)

        def f(th: torch.Tensor) -> float:
            return exact_objective(th, c, rk).item()

        runs = []
        for s in ([seed] if quick else [seed, seed + 1, seed + 2]):
            g = torch.Generator().manual_seed(s)
            single = single_loop(theta0, steps=steps, generator=g)
            nested = nested_loop(theta0, steps=steps, inner=20, generator=g)
            runs.append({"single": [f(t) for t in single.thetas[::4]],
                         "single_steps": single.langevin_steps[::4],
                         "nested": [f(t) for t in nested.thetas[::2]],
                         "nested_steps": nested.langevin_steps[::2],
                         "single_final": f(single.thetas[-1]),
                         "nested_final": f(nested.thetas[-1])})
        return {"F0": f(theta0), "runs": runs, **runs[0]}

    def check(self, data: dict[str, Any]) -> list[Check]:
        gaps = [r["single_final"] - r["nested_final"] for r in data["runs"]]
        return [seed_effect_check("F single loop - F nested loop", gaps)]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.8, 3.2))
        ax.plot(data["single_steps"], data["single"], label="single loop")
        ax.plot(data["nested_steps"], data["nested"], label="nested loop (20 inner)")
        ax.set(xlabel="Langevin steps", ylabel="exact F(theta)")
        ax.legend(fontsize=7)
        return fig


PHENOMENA.register("implicit-diffusion-single-loop", ImplicitDiffusionSingleLoop,
                   papers=(119,), reproduces=True,
                   summary="single-loop sampling+optimization beats the nested loop at equal "
                           "Langevin budget")
