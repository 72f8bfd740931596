"""Grokfast: amplifying the slow (low-frequency) component of the gradient makes a network that
groks generalize in far fewer steps (Lee, Kang, Kim & Lee, "Grokfast: Accelerated Grokking by
Amplifying Slow Gradients", 2024; papers.md row 101)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.diffusion.digits import load_digits_tensor
from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon

# the two arms of the paper's MNIST experiment (authors' main_mnist.py and README): AdamW at
# lr 1e-3 with torch's default betas; the baseline with weight decay 0.01, the Grokfast-EMA arm
# with alpha 0.8, lambda 0.1 and weight decay 2.0
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("adamw", {"weight_decay": 0.01}),
    "grokfast": ("grokfast-adamw", {"weight_decay": 2.0, "alpha": 0.8, "lamb": 0.1}),
}


def digits_split(seed: int, n_train: int = 1000) -> tuple[torch.Tensor, ...]:
    """scikit-learn's 8x8 digits as 64 pixel values in [0, 1] (MNIST's ``ToTensor`` range), a
    random split of ``n_train`` training images (the paper's 1000) and the rest (797) for
    validation, drawn from ``seed``: ``(x_train, y_train, x_val, y_val)``."""
    images, labels = load_digits_tensor()
    x = ((images.flatten(1) + 1) / 2).float()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    tr, va = perm[:n_train], perm[n_train:]
    return x[tr], labels[tr], x[va], labels[va]


class Grokfast(Phenomenon):
    r"""Steps until a network that groks reaches 95% validation accuracy, with AdamW
    (baseline) and with AdamW behind the Grokfast-EMA gradient filter
    (``grokfast-adamw``: :math:`\mu \leftarrow \alpha\mu + (1-\alpha)g`,
    :math:`\hat g = g + \lambda\mu`), in the paper's MNIST experiment.

    Paper: Lee, Kang, Kim & Lee, "Grokfast: Accelerated Grokking by Amplifying Slow
    Gradients", 2024, papers.md row 101. Its MNIST experiment (the Omnigrok setup of Liu et
    al.: grokking on a standard image task induced by a large initialization), read in the
    authors' code (ironjr/grokfast ``main_mnist.py``) and README: 1000 MNIST training
    points, an MLP 784-200-200-10 with ReLU, torch's default initialization of every weight
    and bias multiplied by 8, squared loss (``MSELoss``, mean over the batch and the 10
    outputs) on one-hot targets, minibatches of 200 drawn by a reshuffling loader, AdamW at
    lr 1e-3 with torch's default betas (0.9, 0.999); baseline weight decay 0.01;
    Grokfast-EMA alpha 0.8, lambda 0.1 with weight decay 2.0. Reported: 95% validation
    accuracy after 44022 steps (baseline) and 2001 steps (Grokfast-EMA), x22. Claim: with
    the filter the network generalizes in far fewer steps.

    Setting (the paper's, scaled down along the data only): scikit-learn's 8x8 digits
    (1797 images shipped with the package; MNIST itself is not available offline) in
    [0, 1], 1000 random training images per seed and the other 797 for validation, an MLP
    64-200-200-10 (``mlp``, depth 2, width 200, ``torch-default`` init, every parameter
    then multiplied by 8), everything else as in the paper (loss, batch, optimizer, both
    arms' hyperparameters). Validation accuracy is measured every 10 steps. Full: 3 seeds
    (split, init and batch order), each arm capped at 60000 steps (the paper trains 1e5);
    a run that never reaches 95% counts as the cap (which can only understate the
    speed-up). Quick: 2 seeds, cap 1500 (see "Quick mode" below).

    Criterion (the three checks were written before the first run, in the earlier setting
    below, and are kept unchanged; the precondition is new, written before this setting's
    full run):
    (a) median over seeds of steps-to-95% with Grokfast <= 0.5 x the baseline's median
    (the paper: 1/22 on MNIST); (b) the effect exceeds the seed spread: the slowest Grokfast
    run is faster than the fastest baseline run; (c) every Grokfast run reaches 95%;
    precondition (the baseline is in the grokking regime the paper accelerates): at the
    first step at which a baseline run's training accuracy reaches 99%, its validation
    accuracy is below 0.5 (memorization before generalization), for every seed.
    Why this measures the claim: per seed both arms share split, init and batch order; the
    arms differ as in the paper (the filter and the weight decay the authors pair with it),
    and steps-to-95% is the paper's own measure.

    Result: PASS (``reproduces=True``). Full (3 seeds; 1527 s wall on the shared 2-core
    machine at load ~12, 323 s of CPU time, i.e. about 5.5 minutes on an idle core): steps to
    95% validation accuracy, baseline median 53950 (fastest 53270; the third seed at least
    53950, at most the 60000 cap), Grokfast-EMA median 560 (slowest 570): median ratio
    0.0104 (x96; the paper's MNIST: x22), the slowest filtered run 0.0107 x the fastest
    baseline, every filtered run reaches 95%; the baseline memorizes first (validation
    accuracy at most 0.40 when its training accuracy first reaches 99%). Quick (seed 0, cap
    2500; 11 s of CPU): Grokfast-EMA 570 steps, the baseline censored at 2500 (ratio 0.228),
    the former guard. Before the setting was committed, one exploratory seed of it (a
    plain loop with other draws) sized the cap: Grokfast-EMA at 95% after ~1500 steps, the
    baseline at training accuracy 1.0 and validation 0.41 at step 6500 and 0.93 at step
    46000 (stopped there). The per-seed counts above are read back from the two recorded
    ratios (median and extreme ratios are exact fractions of step counts on the 10-step
    evaluation grid).

    Quick mode (issue 12's quick pass: the claim as a censored comparison; designed from the
    records above and single runs, committed before its run): seeds (seed, seed + 1), both arms
    capped at 1500 steps, everything else as in full mode. The baseline cannot grok within a
    quick run (single runs, seeds 0, 1, 7, cap 2500: training accuracy 0.60-0.68 and validation
    0.27-0.30 at step 2500; full mode: ~54k steps), so it counts at the cap, the full mode's own
    rule for a run that never reaches 95%: the measured ratio is then an upper bound on the true
    one and checks (a)-(c) test the claim's direction with a lower bound on the speed-up: with
    the same seeds, Grokfast-EMA reaches 95% validation accuracy in at most half the steps over
    which the baseline does not reach it. Checks (a), (b), (c) and their thresholds are the full
    mode's; the precondition (the baseline memorizes first) is not checked in quick mode: the
    baseline reaches 99% training accuracy only after some thousands of steps (exploratory seed:
    1.0 by step 6500), beyond the 20 s budget; full mode checks it. Why the cap is 1500:
    Grokfast-EMA reached 95% after 570, 560 and 540 steps (seeds 0, 1, 7 here; full mode
    560-570), so (a) has room up to 750 steps (the exploratory seed's ~1500 came from a plain
    loop with other draws); a step costs ~3.5 ms of CPU on the loaded machine, so 2 seeds are 2
    x (~560 + 1500) steps, about 15 s with the imports on an idle machine. Quick scale-downs: 2
    seeds (not 3), cap 1500 (not 60000). Before this, the quick run was a regression guard (seed
    0, cap 2500, recorded ratio 570/2500 = 0.228 and 1 Grokfast run reaching 95%); it is
    removed.

    Quick result (CLI, ``--quick --threads 1``): PASS at both seeds tried. Seed 0 (seeds 0, 1):
    Grokfast-EMA reaches 95% after 570 and 560 steps, the baseline not within the 1500-step cap:
    median ratio 0.377 (<= 0.5), slowest Grokfast run / fastest baseline 0.38, both Grokfast
    runs reach 95%; 64.8 s wall at load ~8 (about 15 s idle; 23 s of CPU with ~5.6 s of
    imports). Seed 7 (seeds 7, 8): median ratio 0.357, slowest/fastest 0.36, both reach 95%;
    32.6 s at load ~8. The test suite's run: 69 s at load ~8.

    History (kept; earlier settings, FAIL):

    - In the setting of trainlab's ``grokking-features`` phenomenon ((a + b) mod 23, half
      of the pairs for training, an MLP with one hidden layer of 256 ReLU units on the
      concatenated one-hot codes, ``kaiming-uniform`` init, full-batch AdamW lr 1e-2, betas
      (0.9, 0.98), weight decay 3 in both arms, squared loss, Grokfast-EMA alpha 0.98,
      lambda 2): the filter slowed generalization down. 5 seeds, 50 s: steps to 95%
      validation accuracy 515, 427, 510, 407, 585 with AdamW and 1358, 1435, 1418, 1698,
      1566 with Grokfast-EMA (median ratio 2.81).
    - The paper's transformer setting (authors' ``main.py``: x * y mod 97, half of the 9312
      equations for training, a 2-layer decoder-only transformer of width 128 with 4 heads,
      batch 512, ``torch.optim.Adam`` lr 1e-3, betas (0.9, 0.98), 10 warmup steps; the
      Grokfast-EMA arm alpha 0.98, lambda 2 with L2 weight decay 0.005): one seed of the
      Grokfast arm reached 95% validation at ~1200 steps (paper: 910) in 1137 s; the
      baseline's ~4e4 steps (paper: 39890) do not fit the 10-minute full-mode budget. At
      width 64 the same arm was far slower (validation 0.015 at step 900), so width is not
      a free scale-down there.
    - The MNIST-MLP setting on MNIST-1D (40 inputs, its first 1000 training points), one
      exploratory seed: the baseline memorized by step 6000 with test accuracy 0.12-0.15
      up to step 30000; the Grokfast arm reached training/test 1.0 / 0.51 by step 15000.
      MNIST-1D's test accuracies do not reach the paper's 95% threshold for either arm.
    - Before issue 12: an MLP on (a + b) mod 23 with AdamW lr 1e-3, weight decay 1 and
      cross-entropy never generalized in 8000 steps.

    Deviations from the paper: MNIST (784 pixels, 60000 images of which 1000 are used; 10000
    validation images) -> scikit-learn's 8x8 digits (64 pixels, 1000 training and 797
    validation images), so the first layer has 64 inputs; validation accuracy on every 10th
    step rather than the authors' logging grid; 3 seeds, each arm capped at 60000 steps.
    """

    name = "grokfast"
    papers = (101,)
    claim = ("Adding an amplified EMA of past gradients (Grokfast) makes a network that groks "
             "reach high validation accuracy in far fewer steps.")
    paper_figure = ("Lee et al. 2024, MNIST experiment (Omnigrok setup; authors' README: "
                    "steps to 95% validation accuracy 44022 baseline vs 2001 Grokfast-EMA)")
    scale_downs = ("MNIST (28x28, 1000 of 60000 training images) -> sklearn 8x8 digits "
                   "(1000 training, 797 validation)", "MLP 784-200-200-10 -> 64-200-200-10",
                   "3 seeds, cap 60000 steps (paper: 1e5 steps); quick: 2 seeds, cap 1500")
    INIT_SCALE, BATCH, LR, EVERY = 8.0, 200, 1e-3, 10

    def train(self, arm: str, seed: int, cap: int) -> dict[str, Any]:
        """One run of ``arm`` (``"baseline"`` or ``"grokfast"``): ``steps`` to 95% validation
        accuracy (``cap`` if never), ``t_mem`` the first evaluated step with training accuracy
        >= 99% (None if never) and ``val_at_mem`` the validation accuracy there, and the
        evaluated ``curve`` rows (step, train accuracy, validation accuracy)."""
        optimizer, hyper = ARMS[arm]
        x, y, xv, yv = digits_split(seed)
        g = torch.Generator().manual_seed(seed)
        model = build_model("mlp", (x.shape[1],), 10, depth=2, width=200)
        init_apply(model, "torch-default", generator=g)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(self.INIT_SCALE)
        opt = build_optimizer(optimizer, model.parameters(), lr=self.LR, **hyper)
        onehot = F.one_hot(y, 10).float()
        per_epoch = len(x) // self.BATCH
        t_mem = val_at_mem = None
        curve = []
        step, batches = 0, iter(())
        while True:
            if step % self.EVERY == 0 or step == cap:
                with torch.no_grad():
                    tr = (model(x).argmax(1) == y).float().mean().item()
                    va = (model(xv).argmax(1) == yv).float().mean().item()
                curve.append((step, tr, va))
                if t_mem is None and tr >= 0.99:
                    t_mem, val_at_mem = step, va
                if va >= 0.95 or step == cap:
                    break
            idx = next(batches, None)
            if idx is None:  # a new epoch: reshuffle, as the authors' DataLoader does
                batches = iter(torch.randperm(len(x), generator=g)[: per_epoch * self.BATCH]
                               .view(per_epoch, self.BATCH))
                idx = next(batches)
            opt.zero_grad()
            F.mse_loss(model(x[idx]), onehot[idx]).backward()
            opt.step()
            step += 1
        return {"steps": step, "t_mem": t_mem, "val_at_mem": val_at_mem,
                "curve": np.array(curve)}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        cap = 1500 if quick else 60000
        seeds = [seed + i for i in range(2 if quick else 3)]
        runs = {arm: [self.train(arm, s, cap) for s in seeds] for arm in ARMS}
        data = {"cap": cap, "seeds": seeds,
                "baseline": [r["steps"] for r in runs["baseline"]],
                "grokfast": [r["steps"] for r in runs["grokfast"]],
                "curves": {arm: [r["curve"] for r in rs] for arm, rs in runs.items()}}
        if not quick:  # the precondition needs the baseline to memorize: full mode only
            data["baseline_val_at_mem"] = [r["val_at_mem"] for r in runs["baseline"]]
        return data

    def check(self, data: dict[str, Any]) -> list[Check]:
        base, fast = np.array(data["baseline"]), np.array(data["grokfast"])
        ratio = float(np.median(fast) / np.median(base))
        reached = int(np.sum(fast < data["cap"]))
        checks = [
            Check("median steps Grokfast / baseline", ratio,
                  "<= 0.5 (paper: 1/22 on MNIST)", ratio <= 0.5, seeds=len(fast)),
            Check("slowest Grokfast / fastest baseline", float(fast.max() / base.min()),
                  "< 1 (beyond the seed spread)", fast.max() < base.min(), seeds=len(fast)),
            Check("Grokfast runs reaching 95%", reached, f"== {len(fast)}", reached == len(fast)),
        ]
        if "baseline_val_at_mem" in data:
            mem = [np.nan if v is None else v for v in data["baseline_val_at_mem"]]
            worst = float(np.max(mem))
            checks.append(Check("baseline: max val. accuracy at 99% train accuracy", worst,
                                "< 0.5 (memorizes first: the grokking regime)",
                                bool(np.all(np.isfinite(mem))) and worst < 0.5,
                                seeds=len(mem)))
        return checks

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.4))
        for i, (arm, label) in enumerate((("baseline", "AdamW (wd 0.01)"),
                                          ("grokfast", "Grokfast-EMA + AdamW (wd 2)"))):
            for j, c in enumerate(data["curves"][arm]):
                ax.plot(np.maximum(c[:, 0], 1), c[:, 2], color=f"C{i}",
                        label=label if j == 0 else None)
                ax.plot(np.maximum(c[:, 0], 1), c[:, 1], color=f"C{i}", ls=":", lw=0.8)
        ax.axhline(0.95, color="gray", ls=":")
        ax.set(xscale="log", xlabel="step", ylabel="accuracy (dotted: train)",
               title="digits, 1000 training points, init x8")
        ax.legend(fontsize=7)
        return fig


PHENOMENA.register("grokfast", Grokfast, papers=(101,), reproduces=True,
                   summary="Grokfast EMA filter speeds up grokking (MNIST-MLP setting, digits)")
