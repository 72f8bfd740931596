"""Score estimation by gradient descent needs early stopping, and GD is tracked by NTK
kernel regression as the width grows (Han, Razaviyayn & Xu, "Neural Network-Based Score
Estimation in Diffusion Models: Optimization and Generalization", ICLR 2024; papers.md
row 85)."""

from __future__ import annotations

import math
from typing import Any

import torch

from trainlab.diffusion.han2024_score_gd import (
    TwoLayerReLU,
    dsm_regression_data,
    ntk_deviation,
    ring_atoms,
    train_score_gd,
)
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, seed_effect_check
from trainlab.phenomena._trend import ols_slope


class ScoreGDEarlyStopping(Phenomenon):
    """Denoising score matching as noisy-label regression
    (:mod:`trainlab.diffusion.han2024_score_gd`, the paper's parametric formulation, Sec. 3):
    prior = 8 point masses on a circle of radius 0.9 (bounded support, exact E[x0 | x_t]), OU
    forward process, t ~ U[0.05, 1]; two-layer ReLU network with fixed +-1 output weights and
    the first layer trained by full-batch GD (step 1), float64.

    Overfitting / early stopping: n = 128 training triples, width 512, 3000 GD steps (quick:
    1000), a held-out set of 1000 triples whose DSM-loss minimum picks the stopping step.
    NTK tracking: n = 64, widths 256, 512, 1024, 2048, 4096, 300 GD steps, deviation
    ``||f_GD - f_kernelGD|| / ||f_GD - f_0||`` on the training inputs. Seeds 0, 1, 2 (quick:
    seed 0).

    The paper states its claims as theorems, not as measured numbers (abstract: "prolonged
    training on noisy labels leads to overfitting", an early-stopping rule; GD "approximated by
    a sequence of kernel regressions"), so each check tests the stated direction with a
    statistic, not a point value (criterion of issue 14, committed before the run):
    (1) overfitting: per seed, r = exact error ``E||f - E[x0|x_t]||^2`` after all steps / at
    the early-stopping step; PASS iff mean(r) - 1 exceeds the seed half-range (quick: r > 1);
    (2) the training loss keeps falling past the stopping step (every seed);
    (3) GD approaches kernel regression as width grows: the least-squares slope of
    log(deviation) on log(width), all seeds pooled, has its 95% confidence interval below 0.
    Earlier versions required r >= 1.25 (lowered from 1.5 after a quick run gave 1.496) and a
    hold-out/oracle ratio <= 1.1; both thresholds were set after exploration and are dropped.

    Result (full, 3 seeds): PASS. r = 1.72 +- 0.21 (half-range), the training loss still
    falling at the end on every seed; NTK slope -0.41, 95% CI [-0.63, -0.18] (the m^-1/2 law
    predicts -0.5). 40 s on the loaded machine (load ~14; 15 s CPU), about 15 s idle. Quick
    (1 seed): r = 1.50 and slope -0.46, but one seed's five widths give the CI [-1.04, 0.11],
    which includes 0, so the quick run is a regression guard (``quick_reference``) on these
    numbers rather than a test of the claim.

    Deviations from the paper: the paper's claims are theorems; this checks their directions on a
    bounded eight-point prior with an exact posterior mean, a two-layer ReLU network with fixed
    output weights and this library's sizes (above), with criteria written before the run.
    """

    name = "score-gd-early-stopping"
    papers = (85,)
    claim = ("Training a score network by GD on denoising score matching is regression with "
             "noisy labels: GD follows kernel regression with the network's NTK, and long "
             "training fits the label noise, so the score error is U-shaped and early "
             "stopping is required.")
    paper_figure = ("the abstract's and Sec. 3-4's statements (overfitting of prolonged training "
                    "on noisy labels, early stopping, kernel-regression approximation); the "
                    "paper's own full text beyond the abstract could not be read here, and its "
                    "only experiment (Credit Default data) reports no such curve")
    scale_downs = ("a 2-D prior of 8 point masses",
                   "128 training triples, width 512, 3000 GD steps (quick: 1000)",
                   "NTK tracking at widths 256..4096 with 64 triples and 300 steps",
                   "3 seeds (quick: 1)")

    WIDTHS = (256, 512, 1024, 2048, 4096)
    # the quick run (1 seed) cannot show the NTK trend: a regression guard on its numbers
    quick_reference = {"exact error: final / at early stop": 1.4959075959856776,
                       "slope of log NTK deviation vs log width": -0.46381506277534806}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        curves, dev = [], {}
        for s in ([seed] if quick else [seed, seed + 1, seed + 2]):
            g = torch.Generator().manual_seed(s)
            prior = ring_atoms()
            train = dsm_regression_data(prior, 128, generator=g)
            test = dsm_regression_data(prior, 1000, generator=g)
            net = TwoLayerReLU(4, 2, 512, generator=g)
            curves.append(train_score_gd(net, train, test, lr=1.0,
                                         steps=1000 if quick else 3000, record_every=50))
            small = dsm_regression_data(prior, 64, generator=g)
            dev[s] = {w: ntk_deviation(w, small, steps=300, generator=g) for w in self.WIDTHS}
        return {"curves": curves, "curve": curves[0], "ntk": dev}

    def check(self, data: dict[str, Any]) -> list[Check]:
        over, falling = [], []
        for c in data["curves"]:
            i = c.steps.index(c.stop)
            over.append(c.exact[-1] / c.exact[i])
            falling.append(c.train[-1] < c.train[i])
        xs = [math.log(w) for d in data["ntk"].values() for w in d]
        ys = [math.log(v) for d in data["ntk"].values() for v in d.values()]
        slope = ols_slope(xs, ys)
        return [
            seed_effect_check("exact error: final / at early stop", over, baseline=1.0),
            Check("training loss falls past the early stop (share of seeds)",
                  sum(falling) / len(falling), "= 1", all(falling), seeds=len(falling)),
            Check("slope of log NTK deviation vs log width", slope.value,
                  f"95% CI [{slope.low:.3g}, {slope.high:.3g}] below 0 (m^-1/2 law: -0.5)",
                  slope.high < 0),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        c = data["curve"]
        fig, ax = plt.subplots(figsize=(4.8, 3.4))
        ax.plot(c.steps[1:], c.train[1:], label="train DSM loss (noisy labels)")
        ax.plot(c.steps[1:], c.heldout[1:], label="held-out DSM loss")
        ax.plot(c.steps[1:], c.exact[1:], label="exact error E||f - E[x0|xt]||^2")
        ax.axvline(c.stop, color="k", ls=":", lw=0.8, label="early stop")
        ax.set(xscale="log", yscale="log", xlabel="GD step")
        ax.legend(fontsize=7)
        return fig


PHENOMENA.register("score-gd-early-stopping", ScoreGDEarlyStopping, papers=(85,),
                   reproduces=True,
                   summary="GD on denoising score matching: U-shaped exact score error, "
                           "early stopping, NTK tracking")
