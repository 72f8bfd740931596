"""Score estimation by gradient descent needs early stopping, and GD is tracked by NTK
kernel regression as the width grows (Han, Razaviyayn & Xu, "Neural Network-Based Score
Estimation in Diffusion Models: Optimization and Generalization", ICLR 2024; papers.md
row 85)."""

from __future__ import annotations

from typing import Any

import torch

from trainlab.diffusion.han2024_score_gd import (
    TwoLayerReLU,
    dsm_regression_data,
    ntk_deviation,
    ring_atoms,
    train_score_gd,
)
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon


class ScoreGDEarlyStopping(Phenomenon):
    """Denoising score matching as noisy-label regression
    (:mod:`trainlab.diffusion.han2024_score_gd`): prior = 8 point masses on a circle of
    radius 0.9 (bounded support, exact E[x0 | x_t]), OU forward process, t ~ U[0.05, 1];
    two-layer ReLU network (fixed +-1 output weights), full-batch GD with step 1, float64.

    Early stopping: n = 128 training triples, width 512, 1000 GD steps (full: 3000),
    held-out set of 1000 triples. NTK tracking: n = 64, widths 256 and 4096, 300 steps,
    deviation ``||f_GD - f_kernelGD|| / ||f_GD - f_0||`` on the training inputs.

    Pass criterion (from the paper's claims; the paper gives no numbers, the thresholds were
    set after one exploratory run of 3000 steps): (1) prolonged training overfits the label
    noise: the exact error ``E||f - E[x0|x_t]||^2`` at the end is at least 1.25 x its value
    at the hold-out early-stopping step, while the training loss keeps
    falling; (2) the hold-out rule is near the oracle: its exact error is within 10% of the
    minimum over the run; (3) GD approaches kernel regression with the NTK: the deviation
    at width 4096 is at most 0.5 x that at width 256 (an O(m^-1/2) law predicts 0.25).

    Result (seed 0, quick): PASS. Exact error 0.0568 at the stopping step (100) vs 0.0850
    after 1000 steps (ratio 1.50; 0.107 after 3000 steps, ratio 1.88), oracle minimum
    0.0555; training loss still falling (x 0.74); NTK deviation 0.106 at width 256 vs
    0.028 at width 4096 (ratio 0.26).
    """

    name = "score-gd-early-stopping"
    papers = (85,)
    claim = ("Training a score network by GD on denoising score matching is regression with "
             "noisy labels: GD follows kernel regression with the network's NTK, and long "
             "training fits the label noise, so the score error is U-shaped and early "
             "stopping is required.")
    paper_figure = ("the abstract's early-stopping and NTK-approximation claims (the paper gives "
                    "no numbers; theorem numbers not re-read)")
    scale_downs = ("a 2-D prior of 8 point masses",
                   "128 training triples, width 512, 3000 GD steps (quick: 1000)",
                   "NTK tracking at widths 256 and 4096 only")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        prior = ring_atoms()
        train = dsm_regression_data(prior, 128, generator=g)
        test = dsm_regression_data(prior, 1000, generator=g)
        net = TwoLayerReLU(4, 2, 512, generator=g)
        curve = train_score_gd(net, train, test, lr=1.0, steps=1000 if quick else 3000,
                               record_every=50)
        small = dsm_regression_data(prior, 64, generator=g)
        widths = (256, 4096)
        dev = {w: ntk_deviation(w, small, steps=300, generator=g) for w in widths}
        return {"curve": curve, "ntk": dev}

    def check(self, data: dict[str, Any]) -> list[Check]:
        c = data["curve"]
        i = c.steps.index(c.stop)
        over = c.exact[-1] / c.exact[i]
        near = c.exact[i] / min(c.exact)
        ratio = data["ntk"][4096] / data["ntk"][256]
        return [
            Check("exact error: final / at early stop", over, ">= 1.25", over >= 1.25),
            Check("training loss: final / at early stop", c.train[-1] / c.train[i], "< 1",
                  c.train[-1] < c.train[i]),
            Check("exact error at early stop / oracle minimum", near, "<= 1.1", near <= 1.1),
            Check("NTK deviation: width 4096 / width 256", ratio, "<= 0.5 (m^-1/2 law: 0.25)",
                  ratio <= 0.5),
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
