"""Gradient descent trains a single attention layer with the Gaussian kernel to a lower loss
than with the softmax kernel (Song, Han, Zhang, Ding & Hong, "Unraveling the Gradient Descent
Dynamics of Transformers", NeurIPS 2024; papers.md row 11)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from trainlab.models import build_model
from trainlab.models.kernel_attention import KernelAttention  # noqa: F401  (registers it)
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.phenomena._gd import half_mse_gd_stacked


class KernelAttentionGD(Phenomenon):
    """A ``kernel-attention`` layer (W_Q, W_K, W_V all trained; mean over tokens; one
    output) fits random regression targets: 64 sequences of T = 4 Gaussian tokens in d = 8
    (fewer parameters than targets, so the attention itself has to be learned), half mean
    squared error, full-batch gradient descent, float64. Every weight starts N(0, 1/d) from
    a seed shared by the two kernels. Each kernel gets its best learning rate of
    (0.1, 0.3, 1.0) by median final loss. 1000 steps and 8 inits (quick: the same).

    Pass criterion (from the paper's claim that the Gaussian kernel's landscape is more
    favourable to gradient descent, written before running): for >= 80% of the inits the
    Gaussian kernel ends at a lower loss than the softmax kernel from the same init, and the
    median ratio of final losses (Gaussian / softmax) is <= 0.5.

    Result (seed 0): full PASS (194 s): the Gaussian kernel ends lower from 7 of 8 inits,
    median loss ratio 0.25, half-IQR over inits 0.28 (final/initial loss 0.011-0.14 against
    0.083-0.30 for softmax). Both
    kernels pick the largest lr of the grid (1.0), so the grid does not bracket either
    kernel's best lr. Neither the grid, the steps nor the thresholds were changed after the
    runs.

    Why the check measures the claim: both kernels start from the same weights, data and
    targets and each gets its own best lr, so the only difference is the kernel; the claim
    is about the optimisation landscape, so the measure is the training loss GD reaches, per
    init (the fraction of inits won is a paired sign statistic over 8 seeds) and as a median
    ratio (robust to the per-init spread, which the gallery shows).

    Quick mode (the claim itself, the same criterion, no extra tolerance): the full setting
    (1000 steps, 8 inits, the lr grid of 3). All runs of one kernel are trained at once on
    stacked parameters (:func:`trainlab.phenomena._gd.half_mse_gd_stacked`, plain SGD run
    by run, the same numbers as one run at a time to float64 rounding), so the whole grid
    costs a few seconds and no scale-down is needed. Before issue 12's quick pass the quick
    run was a regression guard (lr 1.0, 300 steps, 3 inits: median ratio 0.64, FAIL of the
    claim), because the runs were trained one by one (194 s for the full grid). Result
    (quick = full, seed 0, run after this was committed): PASS with the numbers above (7 of
    8 inits, median ratio 0.246, half-IQR 0.28), 12.2 s user + 0.5 s system CPU for the
    whole CLI call (about 4 s of it the imports), one thread.

    Deviations: the paper proves convergence for large d with a particular initialization and
    tests on text classification and Pathfinder; this is a small synthetic regression in
    which neither kernel reaches zero loss, so it compares convergence speed, not global
    optimality. The Gaussian kernel's exact form is the uncertain point of
    :mod:`trainlab.models.kernel_attention`.
    """

    name = "kernel-attention-gd"
    papers = (11,)
    claim = ("Under gradient descent a single attention layer with the Gaussian kernel "
             "converges faster and to better solutions than with the softmax kernel, which can "
             "stall at suboptimal points.")

    paper_figure = ("the abstract's claim and Sec. 5's training-loss curves (text "
                    "classification, Pathfinder); figure numbers not re-read")
    scale_downs = ("synthetic regression (64 sequences, T = 4, d = 8) instead of text "
                   "classification and Pathfinder",
                   "one attention layer with one output instead of a full Transformer",
                   "1000 full-batch GD steps, 8 inits, lr grid of 3")

    N, T, D = 64, 4, 8
    LRS = (0.1, 0.3, 1.0)

    def _models(self, kernel: str, inits: list[int]) -> list[torch.nn.Module]:
        """One layer per init seed, every weight N(0, 1/d) from ``1000 + init``."""
        models = []
        for i in inits:
            model = build_model("kernel-attention", (self.T, self.D), 1, kernel=kernel).double()
            g = torch.Generator().manual_seed(1000 + i)
            with torch.no_grad():
                for p in model.parameters():
                    p.normal_(0.0, 1 / math.sqrt(self.D), generator=g)
            models.append(model)
        return models

    def _final_losses(self, kernel: str, lrs: tuple[float, ...], inits: list[int],
                      steps: int, x: torch.Tensor, y: torch.Tensor) -> dict[float, list[float]]:
        """Final / initial loss of every (lr, init) run of one kernel (``inf`` if it
        diverged), all trained at once."""
        models = self._models(kernel, inits) * len(lrs)
        rates = [lr for lr in lrs for _ in inits]
        first, last = half_mse_gd_stacked(models, x, y, lrs=rates, steps=steps)
        rel = torch.where(torch.isfinite(last), last / first, torch.inf).tolist()
        k = len(inits)
        return {lr: rel[j * k:(j + 1) * k] for j, lr in enumerate(lrs)}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        # quick is the full setting: stacked runs make the whole grid fit in 20 s
        steps, inits, lrs = 1000, [seed * 100 + i for i in range(8)], self.LRS
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(self.N, self.T, self.D, generator=g, dtype=torch.float64)
        y = torch.randn(self.N, 1, generator=g, dtype=torch.float64)
        losses = {k: self._final_losses(k, lrs, inits, steps, x, y)
                  for k in ("softmax", "gaussian")}
        best = {k: min(lrs, key=lambda lr, k=k: float(np.median(losses[k][lr])))
                for k in losses}
        return {"steps": steps, "lrs": list(lrs), "best_lr": best,
                "final": {k: losses[k][best[k]] for k in losses},
                "grid": {k: {str(lr): v for lr, v in losses[k].items()} for k in losses}}

    def check(self, data: dict[str, Any]) -> list[Check]:
        soft, gauss = np.array(data["final"]["softmax"]), np.array(data["final"]["gaussian"])
        wins = float(np.mean(gauss < soft))
        ratios = gauss / soft
        ratio = float(np.median(ratios))
        half_iqr = float(np.subtract(*np.percentile(ratios, [75, 25]))) / 2
        return [
            Check("fraction of inits where Gaussian ends lower", wins, ">= 0.8", wins >= 0.8,
                  seeds=len(ratios)),
            Check("median final-loss ratio Gaussian / softmax", ratio,
                  "<= 0.5 (spread: half the interquartile range over inits)", ratio <= 0.5,
                  half_iqr, len(ratios)),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.8, 3.4))
        for k in ("softmax", "gaussian"):
            med = [np.median(data["grid"][k][str(lr)]) for lr in data["lrs"]]
            ax.plot(data["lrs"], med, "o-", label=k)
        ax.set(xscale="log", yscale="log", xlabel="learning rate",
               ylabel=f"median final / initial loss ({data['steps']} steps)")
        ax.legend(fontsize=8)
        return fig


PHENOMENA.register("kernel-attention-gd", KernelAttentionGD, papers=(11,), reproduces=True,
                   summary="GD on one attention layer: Gaussian kernel beats softmax kernel")
