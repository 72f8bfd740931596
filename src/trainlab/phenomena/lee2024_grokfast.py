"""Grokfast: amplifying the slow (low-frequency) component of the gradient makes a network
generalize on modular arithmetic in far fewer steps (Lee, Kang, Kim & Lee, "Grokfast:
Accelerated Grokking by Amplifying Slow Gradients", 2024; papers.md row 101)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.tasks import build_task


class Grokfast(Phenomenon):
    """Steps until a network that groks on modular addition reaches 95% validation accuracy,
    with AdamW (baseline) and with the same AdamW behind the Grokfast-EMA gradient filter
    (``grokfast-adamw``: :math:`\\mu \\leftarrow \\alpha\\mu + (1-\\alpha)g`,
    :math:`\\hat g = g + \\lambda\\mu`, alpha 0.98, lambda 2, the paper's modular-arithmetic
    EMA values).

    Paper: Lee, Kang, Kim & Lee, "Grokfast: Accelerated Grokking by Amplifying Slow
    Gradients", 2024, papers.md row 101 (README and code of the authors: on modular
    arithmetic with a 2-layer transformer, steps to 95% validation accuracy go from 39890
    (baseline) to 910 with the EMA filter, x43.8; the MNIST MLP in the Omnigrok setup x22).
    Claim: with the filter the network generalizes in far fewer steps.

    Setting: the one in which trainlab's ``grokking-features`` phenomenon groks (Tian 2025,
    row 33): (a + b) mod 23 with half of the pairs for training, ``mlp`` with one hidden layer
    of 256 ReLU units on the concatenated one-hot codes, ``kaiming-uniform`` init, full-batch
    AdamW lr 1e-2, betas (0.9, 0.98), weight decay 3, squared loss on one-hot targets;
    training accuracy reaches 99% within ~30 steps and validation 95% only hundreds of steps
    later (grokking). Both arms use exactly these hyperparameters; the only difference is the
    filter. Deviations: an MLP on a prime of 23 instead of the paper's transformer on 97
    (the MLP setting groks on a CPU in seconds); the paper retunes weight decay per filter,
    here it is the same for both arms (a cleaner comparison of the filter alone). Full:
    5 seeds (split and init), cap 3000 steps; quick: 2 seeds, cap 1500. A run that never
    reaches 95% counts as the cap (which can only understate the speed-up).

    Criterion (written before the run, from the paper's claim; the paper's x44 cannot show
    here because the baseline groks only ~20x after memorizing, which bounds any speed-up):
    (a) median over seeds of steps-to-95% with Grokfast <= 0.5 x the baseline's median;
    (b) the effect exceeds the seed spread: the slowest Grokfast run is faster than the
    fastest baseline run; (c) every Grokfast run reaches 95%.
    Why this measures the claim: same split, init, data and hyperparameters per seed; the
    filter is the only difference, and steps-to-95% is the paper's own measure.

    Result: FAIL (``reproduces=False``): in this setting the filter slows generalization
    down. Full (5 seeds, 50 s): steps to 95% validation accuracy 515, 427, 510, 407, 585 with
    AdamW and 1358, 1435, 1418, 1698, 1566 with Grokfast-EMA (median ratio 2.81; every run
    reaches 95%). Quick (seeds 0-1): 515, 427 vs 1358, 1435. A plausible reason, not tested:
    at lr 1e-2 and weight decay 3 the baseline already generalizes only ~20x after it
    memorizes, and the amplified slow component acts as extra inertia under Adam's
    normalization; the paper's regime (lr 1e-3, weight decay 0.005, Adam with L2, a
    transformer on mod 97 grokking after ~40k steps) was not run: its baseline needs ~4e4
    steps of a transformer, beyond the CPU budget. Nothing was tuned after this result.

    The paper's own setting, checked against the authors' code (ironjr/grokfast ``main.py``,
    README "Algorithmic Data" table): x * y mod 97 with x in 0..96, y in 1..96 as the token
    sequence (x, op, y, =), half of the 9312 equations for training, a 2-layer decoder-only
    transformer of width 128 with 4 heads (loss and accuracy on the answer position only),
    batch 512, ``torch.optim.Adam`` lr 1e-3, betas (0.9, 0.98), linear warmup over 10
    steps; the baseline has no weight decay, the Grokfast-EMA arm alpha 0.98, lambda 2 and
    an L2 weight decay of 0.005 inside Adam (not AdamW). One seed of the Grokfast arm was
    run here in that setting (the authors' block layout, trainlab's Grokfast-EMA and Adam
    transforms): training accuracy 0.27 / 0.78 / 0.97 / 1.00 and validation accuracy
    0.01 / 0.09 / 0.88 / 1.00 at steps 600 / 800 / 1100 / 1200, i.e. 95% validation at
    ~1200 steps (paper: 910), in 1137 s on the shared 2-core machine. At width 64 the same
    arm was far slower (validation 0.015 at step 900, training 0.24), so width is not a
    free scale-down here. The baseline needs ~4e4 steps (paper: 39890); at ~0.15 s per step
    (idle estimate) even a baseline capped at 2x the Grokfast steps, 3 seeds per arm, is
    ~25 minutes, over the 10-minute full-mode budget, so the verdict below stays the one in
    the grokking-features setting. The paper's MNIST-MLP setting (authors' ``main_mnist.py``:
    MLP 784-200-200-10 ReLU, torch's init scaled by 8, 1000 training points, batch 200, MSE
    on one-hot targets, AdamW lr 1e-3; baseline weight decay 0.01, Grokfast-EMA alpha 0.8,
    lambda 0.1 with weight decay 2.0; 95% validation at 44022 vs 2001 steps) needs MNIST,
    which is not available offline. One exploratory seed of it on MNIST-1D (40 inputs,
    the first 1000 training points) was run, not a verdict: the baseline memorizes by step
    6000 and its test accuracy creeps from 0.12 to 0.15 by step 30000; the Grokfast arm's
    outputs first collapse under the weight decay, then training and test accuracy rise
    together to 1.0 / 0.51 by step 15000. A verdict in that setting needs a threshold that
    fits MNIST-1D (the paper's 95% does not), fixed before a 3-seed run; the baseline's
    ~3e4 steps cost about a minute of CPU each, so 3 seeds per arm would fit the full-mode
    budget.

    Earlier result (before issue 12): an MLP on (a + b) mod 23 with AdamW lr 1e-3, weight
    decay 1 and cross-entropy never generalized in 8000 steps (no grokking to accelerate).
    """

    name = "grokfast"
    papers = (101,)
    claim = ("Adding an amplified EMA of past gradients (Grokfast) makes a network reach high "
             "validation accuracy on modular arithmetic in far fewer steps.")
    paper_figure = "Lee et al. 2024, Fig. 1 / README table (steps to 95% validation accuracy)"
    scale_downs = ("2-layer transformer on mod 97 -> 1-hidden-layer MLP on mod 23",
                   "5 seeds, cap 3000 steps (quick: 2 seeds, cap 1500)")
    P = 23

    def _steps_to_generalize(self, optimizer: str, seed: int, cap: int) -> int:
        task = build_task("modular-addition", p=self.P, train_fraction=0.5, data_seed=seed)
        model = build_model("mlp", task.input_shape, self.P, depth=1, width=256)
        init_apply(model, "kaiming-uniform", generator=torch.Generator().manual_seed(seed))
        opt = build_optimizer(optimizer, model.parameters(), lr=1e-2, betas=(0.9, 0.98),
                              weight_decay=3.0)
        onehot = F.one_hot(task.y_train, self.P).to(task.x_train.dtype)
        for step in range(cap):
            with torch.no_grad():
                acc = (model(task.x_test).argmax(1) == task.y_test).float().mean().item()
            if acc >= 0.95:
                return step
            opt.zero_grad()
            (0.5 * (model(task.x_train) - onehot).pow(2).sum(1).mean()).backward()
            opt.step()
        return cap

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        cap = 1500 if quick else 3000
        seeds = [seed + i for i in range(2 if quick else 5)]
        return {"cap": cap, "seeds": seeds,
                "baseline": [self._steps_to_generalize("adamw", s, cap) for s in seeds],
                "grokfast": [self._steps_to_generalize("grokfast-adamw", s, cap)
                             for s in seeds]}

    def check(self, data: dict[str, Any]) -> list[Check]:
        base, fast = np.array(data["baseline"]), np.array(data["grokfast"])
        ratio = float(np.median(fast) / np.median(base))
        reached = int(np.sum(fast < data["cap"]))
        return [
            Check("median steps Grokfast / baseline", ratio,
                  "<= 0.5 (paper: 1/44 on its transformer)", ratio <= 0.5),
            Check("slowest Grokfast / fastest baseline", float(fast.max() / base.min()),
                  "< 1 (beyond the seed spread)", fast.max() < base.min()),
            Check("Grokfast runs reaching 95%", reached, f"== {len(fast)}", reached == len(fast)),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        x = np.arange(len(data["seeds"]))
        ax.bar(x - 0.2, data["baseline"], 0.4, label="AdamW")
        ax.bar(x + 0.2, data["grokfast"], 0.4, label="Grokfast-EMA + AdamW")
        ax.axhline(data["cap"], color="gray", ls=":")
        ax.set(xticks=x, xticklabels=[f"seed {s}" for s in data["seeds"]],
               ylabel="steps to 95% validation accuracy")
        ax.legend(fontsize=8)
        return fig


PHENOMENA.register("grokfast", Grokfast, papers=(101,), reproduces=False,
                   summary="Grokfast EMA filter speeds up generalization on modular addition")
