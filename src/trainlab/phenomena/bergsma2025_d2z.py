"""Linear decay to zero (D2Z) beats cosine decay to 10% of the peak ("10x") at each schedule's
best peak learning rate (Bergsma et al., "Straight to Zero: Why Linearly Decaying the
Learning Rate to Zero Works Best for LLMs", 2025; papers.md row 14)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import ScheduleLR, build_optimizer, build_schedule
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, seed_summary


class StraightToZero(Phenomenon):
    """Noisy online regression trained by AdamW, the two schedules over a peak-lr grid.

    Setup (the notes' B11 "noisy SGD regression" option): a fixed random teacher ``mlp``
    (depth 1, width 32, tanh) on 20-dimensional Gaussian inputs plus label noise of std 0.5;
    every step draws a fresh batch of 32 (infinite data, like LM pretraining, the regime in
    which the paper's EMA argument applies); student ``mlp`` depth 2 width 64 (ReLU,
    ``kaiming-normal``); AdamW (weight decay 0.1) for 1500 steps (300 in quick mode), 5%
    warmup, peak lr in {1e-3, 3e-3, 1e-2}; schedules ``d2z`` and ``cosine`` with floor 0.1.
    The final loss is measured on 20000 held-out points (the effect is small, so the
    held-out noise must be smaller still). Three seeds (data, init and batches).

    Pass criterion (from the paper's claim, written before running): the best-lr D2Z
    held-out loss is <= the best-lr 10x-cosine loss on at least 2 of 3 seeds, and (the rule
    that a comparison's effect must exceed the seed-to-seed spread) the mean relative gain
    ``1 - L_D2Z / L_10x`` over the 3 seeds is larger than its half-range over seeds.

    Why the check measures the claim: the paper compares the two schedules each at its own
    best peak lr, after the same number of steps on the same data; here both schedules see
    the same fresh batches, init and held-out set per seed, so the gain is paired, and fresh
    batches every step put AdamW in the data-rich regime the paper's EMA explanation needs.

    Result: reported FAIL (``reproduces=False``). Full setting (1500 steps, seeds 0, 100,
    200, 86 s): D2Z wins on 2 of 3 seeds, mean gain +0.36% with a seed half-range of 0.81%
    (the paper reports ~0.8% for a 610M model at 20 tokens per parameter): the direction
    agrees with the paper but the effect does not exceed the seed-to-seed spread, so it is
    not shown here. Known weakness, not fixed after seeing results: the best lr is the top of
    the grid (1e-2) for both schedules, so the optimum is not bracketed. Not tried (left for
    a later change): the paper's trend form of the claim, the gain growing with training
    length at each schedule's bracketed best lr.

    Quick mode (a regression guard, not the claim): short runs favour 10x cosine (at 600 and
    300 steps 10x wins on 3 of 3 seeds, D2Z 0.8% worse), consistent with the paper's finding
    that D2Z's advantage grows with training length but unable to show the claim in 20 s.
    The quick run is the same code path with 300 steps and 1 seed; the test compares its
    numbers with the recorded ones (``quick_reference``).

    Deviations: an MLP regression with fresh Gaussian inputs instead of LLM pretraining
    (the paper's 111M-1.7B GPT models); the lr grid has 3 points.
    """

    name = "d2z-vs-cosine"
    papers = (14,)
    claim = ("At the best peak learning rate for each, linear decay to zero ends at a lower "
             "loss than cosine decay to 10% of the peak.")

    paper_figure = ("the abstract's 610M-model comparison at 20 tokens per parameter and the "
                    "loss-vs-peak-lr sweeps of the main text (figure numbers not re-read)")
    scale_downs = ("teacher-student MLP regression with fresh batches instead of LLM "
                   "pretraining", "1500 AdamW steps, 3 seeds, 3 peak lrs")
    quick_reference = {"seeds where best-lr D2Z <= best-lr 10x cosine": 0.0,
                       "mean relative gain of D2Z": -0.0032482941092975004}

    LRS = (1e-3, 3e-3, 1e-2)

    def _final_loss(self, schedule: str, lr: float, steps: int, seed: int) -> float:
        g = torch.Generator().manual_seed(seed)
        teacher = build_model("mlp", (20,), 1, depth=1, width=32, activation="tanh")
        init_apply(teacher, "xavier-normal", generator=g)
        x_test = torch.randn(20000, 20, generator=g)
        with torch.no_grad():
            y_test = teacher(x_test) + 0.5 * torch.randn(20000, 1, generator=g)
        model = build_model("mlp", (20,), 1, depth=2, width=64)
        init_apply(model, "kaiming-normal", generator=torch.Generator().manual_seed(seed + 7))
        opt = build_optimizer("adamw", model.parameters(), lr=lr, weight_decay=0.1)
        hyper = {"warmup": steps // 20} | ({"floor": 0.1} if schedule == "cosine" else {})
        sched = ScheduleLR(opt, build_schedule(schedule, steps, **hyper))
        batches = torch.Generator().manual_seed(seed + 13)
        xs = torch.randn(steps, 32, 20, generator=batches)
        with torch.no_grad():
            ys = teacher(xs.reshape(-1, 20)).reshape(steps, 32, 1)
        ys += 0.5 * torch.randn(steps, 32, 1, generator=batches)
        for x, y in zip(xs, ys, strict=True):
            opt.zero_grad()
            (model(x) - y).pow(2).mean().backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            return (model(x_test) - y_test).pow(2).mean().item()

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        steps = 300 if quick else 1500
        seeds = [seed + 100 * i for i in range(1 if quick else 3)]
        loss = {s: [[self._final_loss(s, lr, steps, sd) for lr in self.LRS] for sd in seeds]
                for s in ("d2z", "cosine")}
        return {"lrs": list(self.LRS), "seeds": seeds, "d2z": np.array(loss["d2z"]),
                "cosine": np.array(loss["cosine"])}

    def check(self, data: dict[str, Any]) -> list[Check]:
        best_d2z, best_cos = data["d2z"].min(1), data["cosine"].min(1)
        n = len(best_d2z)
        wins = int(np.sum(best_d2z <= best_cos))
        gain, spread, _ = seed_summary(1 - best_d2z / best_cos)
        return [
            Check("seeds where best-lr D2Z <= best-lr 10x cosine", wins, f">= 2 of 3 ({n} run)",
                  n >= 3 and wins >= 2, seeds=n),
            Check("mean relative gain of D2Z", gain,
                  "> its half-range over seeds (paper: ~0.8% at 20 TPP)",
                  n >= 3 and gain > spread, spread, n),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        for key, style in (("d2z", "o-"), ("cosine", "s--")):
            for i, _ in enumerate(data["seeds"]):
                ax.plot(data["lrs"], data[key][i], style, color=f"C{i}",
                        label=f"{key}" if i == 0 else None)
        ax.set(xscale="log", xlabel="peak lr", ylabel="held-out loss")
        ax.legend(fontsize=8)
        return fig


PHENOMENA.register("d2z-vs-cosine", StraightToZero, papers=(14,), reproduces=False,
                   summary="linear decay to zero beats 10x cosine at the best peak lr")
