"""Large-batch training generalizes worse only because it makes fewer updates: with as many
updates as small-batch training, the learning rate scaled by sqrt(batch ratio) and ghost batch
norm, the gap closes; and the weights move from their init like a random walk on a random
landscape, ||w_t - w_0|| ~ log t (Hoffer, Hubara & Soudry, "Train longer, generalize better:
closing the generalization gap in large batch training of neural networks", NeurIPS 2017;
papers.md row 37)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.init import apply as init_apply
from trainlab.models.ghost_batchnorm import GhostBatchNorm
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, seed_summary

ARMS = ("SB", "LB", "LB+LR", "LB+LR+GBN", "LB+LR+GBN+RA")
"""Table 1's columns: small batch; large batch; + sqrt lr scaling; + ghost batch norm;
+ regime adaptation (every epoch count multiplied by the batch ratio)."""


def shallow_convnet(ghost: int | None, generator: torch.Generator, channels: int = 32,
                    hidden: int = 128, length: int = 40, classes: int = 10) -> nn.Sequential:
    """A 1-D version of the paper's shallow convnet C1 (Keskar et al.'s, as in the authors'
    ``cifar_shallow.py``): two blocks conv(kernel 5, no bias) -> max-pool(3, stride 2) ->
    batch norm -> ReLU, then a bias-free Linear -> batch norm -> ReLU -> Linear readout.
    Batch norm is ghost batch norm of virtual size ``ghost`` when given. Input ``(N, length)``;
    ``kaiming-normal`` weights drawn from ``generator``."""
    def norm(c: int) -> nn.Module:
        return nn.BatchNorm1d(c) if ghost is None else GhostBatchNorm(c, ghost_batch_size=ghost)

    pooled = length
    for _ in range(2):
        pooled = (pooled - 3) // 2 + 1
    model = nn.Sequential(
        nn.Unflatten(1, (1, length)),
        nn.Conv1d(1, channels, 5, padding=2, bias=False), nn.MaxPool1d(3, 2), norm(channels),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 5, padding=2, bias=False), nn.MaxPool1d(3, 2),
        norm(channels), nn.ReLU(), nn.Flatten(),
        nn.Linear(channels * pooled, hidden, bias=False), norm(hidden), nn.ReLU(),
        nn.Linear(hidden, classes))
    init_apply(model, "kaiming-normal", generator=generator)
    return model


def fit_r2(x: np.ndarray, y: np.ndarray) -> float:
    """Coefficient of determination of the least-squares line of ``y`` on ``x``."""
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    return float(1 - resid @ resid / np.sum((y - y.mean()) ** 2))


class TrainLonger(Phenomenon):
    """Table 1's five columns on MNIST-1D with a shallow batch-norm convnet, three seeds.

    Setting (Table 1's columns; hyperparameters from the authors' code,
    eladhoffer/bigBatch: ``main_gbn.py``, ``models/mnist_f1.py``, ``models/cifar_shallow.py``):
    small batch (SB) 32 and large batch (LB) 1024, the paper's batch ratio 32 (128 vs 4096);
    SGD, momentum 0.9, weight decay 1e-4, lr 0.1 cut 10x at 20%, 40% and 60% of training
    (F1's 10/20/30 of 50 epochs), cross-entropy, :func:`shallow_convnet`. The five runs per
    seed: SB for E epochs; LB for E epochs at lr 0.1; "+LR": lr 0.1 sqrt(1024/32);
    "+GBN": also ghost batch norm over virtual batches of 32; "+RA" (regime adaptation): also
    E x 32 epochs with every lr milestone x 32, i.e. as many updates as SB. MNIST-1D (the
    ``mnist1d`` task, 5120 samples: 4096 train, 1024 test), E = 10, seeds 0, 1, 2 (init and
    batch order). ``||w_t - w_0||`` (all weights) is logged at every step of SB's first
    (lr 0.1) phase, the phase the paper studies.

    Pass criterion (written before the full run, from the abstract's claims and Table 1,
    where the LB column is below SB in every row and the +RA column is at or above SB in
    every row but one, within 0.2 points there): (a) precondition, a gap exists: the mean
    over seeds of SB - LB test accuracy exceeds its half-range over seeds; (b) the claim,
    regime adaptation closes it: the mean over seeds of SB - (+RA) is at most its half-range
    (the remaining gap is not distinguishable from zero, or negative); (c) the weight
    distance grows like log t, not like the sqrt t of a random walk on a flat landscape: over
    SB's first phase (t >= 10) the R^2 of the fit against log t exceeds that against sqrt t
    on every seed. The +LR and +GBN columns are recorded as numbers (not judged: the issue's
    claim is the one of (b)).

    Why the check measures the claim: the five arms share data, init and the seed's batch
    order, so the gap is paired per seed and attributed to the batch/regime change alone; LB
    at equal epochs makes 32x fewer updates, and +RA restores the updates with everything
    else the same as +GBN.

    Result (full mode, seeds 0, 1, 2; 211 s of one core with one torch thread, about 3.5 min
    on an idle machine): PASS (``reproduces=True``). Test accuracy (%) per seed, SB / LB /
    +LR / +GBN / +RA: 95.9 / 62.4 / 78.4 / 79.3 / 98.0; 97.3 / 65.0 / 80.1 / 81.9 / 98.1;
    97.3 / 59.3 / 73.7 / 73.6 / 98.0. (a) SB - LB = 34.6 points, half-range 2.9; (b) SB -
    (+RA) = -1.3 points (RA is better), half-range 0.7; (c) R^2 against log t 0.998, 0.996,
    0.999 vs against sqrt t 0.952, 0.973, 0.951 (smallest margin 0.022). Recorded, not
    judged: SB - (+LR) 19.4 +- 3.2, SB - (+GBN) 18.5 +- 4.2 points: here ghost batch norm
    alone adds about 1 point on two seeds and nothing on the third, where the paper's +GBN
    column gains more. The numbers come from the module's own ``_seed``/``check`` run in a
    script with one torch thread; the CLI run of the same mode (two threads, shared machine
    at load ~15) was stopped after 95 min without a result.

    Quick mode (the claim, the same three checks and statistics as full mode, no other
    tolerance; designed and committed before its first run): 3 seeds, scaled down along axes
    the claim does not depend on: a quarter of the width (8 channels, 32 hidden units),
    1024 training points (MNIST-1D with 2560 samples, 40% for training: 1024 train, 1536
    test; the batch sizes 32 and 1024 and their ratio 32 kept, so LB makes one step per
    epoch), E = 6 (SB and RA: 192 updates each; SB's first phase 38 steps, the log-vs-sqrt
    fit over t = 10..38). Cost, measured on single arms (seed 0, E = 10, machine at load
    ~6): SB 2.7 ms per step, RA 21.6 ms per step (ghost batch norm over 32 ghost batches
    dominates), so about 5.2 s per seed at E = 6 and ~16 s of CPU for 3 seeds plus ~3 s of
    imports. SB is less trained than in full mode (71% test accuracy after E = 10 in that
    timing run, 96-97% in full mode), which does not matter to the claim: it is about equal
    updates, and the check compares +RA with SB at the same number of updates.
    Before issue 12's quick pass the quick run was a regression guard (one seed, E = 1,
    full width and data: 8.3 s of one core), because at that data size 3 seeds of E = 10
    cost ~8 s of CPU per epoch and seed; the smaller training set is what makes E = 6
    affordable. The quick sizes enter through ``QUICK`` (``FULL`` holds the full ones) and
    ``_train``'s ``width``; the full code path is unchanged (its five arms at E = 1 gave
    bit-identical accuracies and distance curves before and after the change), so full
    mode was not rerun.

    Quick result (recorded after the design was committed; CLI ``reproduce train-longer
    --quick --threads 1``): PASS at seed 0 (seeds 0, 1, 2) and at seed 7 (7, 8, 9).
    Seed 0 / seed 7: SB - LB 44.2 +- 8.7 / 49.9 +- 3.1 points; SB - (+RA) -27.3 +- 6.5 /
    -23.0 +- 1.4 (RA better: 192 large-batch updates train further than 192 small-batch
    ones); R^2(log t) - R^2(sqrt t), smallest over seeds, 0.0029 / 0.0087 (a thin margin
    over the 29-step window, where the full run's was 0.022). Time: 74 s / 88 s wall at
    load ~8 (about 19 s / 22 s on an idle machine), 27 s / 30 s of CPU.

    Deviations: MNIST-1D (4096 procedurally generated 40-sample signals) instead of MNIST /
    CIFAR; a 1-D C1 without dropout and with 32 channels and 128 hidden units; absolute
    batch sizes 4x smaller than the paper's (the ratio kept) because the training set is
    12x smaller; no gradient-norm clipping (the authors' GBN script clips at 5).
    """

    name = "train-longer"
    papers = (37,)
    paper_figure = ("Table 1 (columns SB, LB, +LR, +GBN, +RA) and the ||w_t - w_0|| against "
                    "log t figure of Sec. 3 (the full text was not reachable here; values "
                    "as recalled, setting from the authors' code)")
    scale_downs = ("MNIST-1D (4096 train) and a 1-D shallow convnet instead of MNIST/CIFAR "
                   "and F1/C1/ResNet-44", "batches 32 vs 1024 (paper 128 vs 4096, ratio 32 "
                   "kept)", "10 epochs (RA: 320) instead of 50-200 (and x32)",
                   "3 seeds", "quick: 8 channels and 32 hidden units, 1024 training points, "
                   "E = 6 (3 seeds)")
    claim = ("The large-batch generalization gap comes from too few updates: training as many "
             "updates with lr scaled by sqrt(batch ratio) and ghost batch norm closes it, "
             "while ||w_t - w_0|| grows logarithmically in t.")

    SMALL, LARGE, LR = 32, 1024, 0.1
    MILESTONES = (0.2, 0.4, 0.6)
    FULL = {"channels": 32, "hidden": 128, "num_samples": 5120, "train_split": 0.8, "epochs": 10}
    QUICK = {"channels": 8, "hidden": 32, "num_samples": 2560, "train_split": 0.4, "epochs": 6}

    def _train(self, data: tuple, batch: int, lr: float, epochs: int, ghost: int | None,
               seed: int, log_until: int = 0, width: tuple[int, int] = (32, 128)
               ) -> dict[str, Any]:
        xtr, ytr, xte, yte = data
        g = torch.Generator().manual_seed(seed)
        model = shallow_convnet(ghost, g, channels=width[0], hidden=width[1])
        w0 = torch.cat([p.detach().flatten() for p in model.parameters()])
        opt = build_optimizer("sgd", model.parameters(), lr=lr, momentum=0.9,
                              weight_decay=1e-4)
        per_epoch = len(xtr) // batch
        steps = epochs * per_epoch
        sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, [round(f * steps) for f in self.MILESTONES], gamma=0.1)
        distance = []
        for step in range(steps):
            if step % per_epoch == 0:
                order = torch.randperm(len(xtr), generator=g)
            idx = order[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
            sched.step()
            if step < log_until:
                w = torch.cat([p.detach().flatten() for p in model.parameters()])
                distance.append((w - w0).norm().item())
        model.eval()
        with torch.no_grad():
            accuracy = (model(xte).argmax(1) == yte).float().mean().item()
        return {"accuracy": accuracy, "steps": steps, "distance": distance}

    def _seed(self, data: tuple, epochs: int, seed: int,
              width: tuple[int, int] = (32, 128)) -> dict[str, Any]:
        s, b = self.SMALL, self.LARGE
        lr_fix = self.LR * math.sqrt(b / s)
        first_phase = round(self.MILESTONES[0] * epochs * (len(data[0]) // s))
        arms = {"SB": (s, self.LR, epochs, None), "LB": (b, self.LR, epochs, None),
                "LB+LR": (b, lr_fix, epochs, None), "LB+LR+GBN": (b, lr_fix, epochs, s),
                "LB+LR+GBN+RA": (b, lr_fix, epochs * (b // s), s)}
        return {arm: self._train(data, *args, seed, first_phase if arm == "SB" else 0, width)
                for arm, args in arms.items()}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        from trainlab.tasks.mnist1d import mnist1d

        cfg = self.QUICK if quick else self.FULL
        task = mnist1d(num_samples=cfg["num_samples"], train_split=cfg["train_split"])
        data = (task.x_train, task.y_train, task.x_test, task.y_test)
        epochs, width = cfg["epochs"], (cfg["channels"], cfg["hidden"])
        seeds = [seed + i for i in range(3)]
        return {"epochs": epochs, "seeds": seeds,
                "runs": [self._seed(data, epochs, sd, width) for sd in seeds]}

    @staticmethod
    def log_beats_sqrt(distance: list[float], start: int = 10) -> tuple[float, float]:
        """``(R^2 against log t, R^2 against sqrt t)`` of ``||w_t - w_0||`` for
        ``t >= start`` (``distance[t - 1]`` is the value after step ``t``)."""
        t = np.arange(1, len(distance) + 1, dtype=float)
        d = np.asarray(distance, dtype=float)
        keep = t >= start
        return fit_r2(np.log(t[keep]), d[keep]), fit_r2(np.sqrt(t[keep]), d[keep])

    def check(self, data: dict[str, Any]) -> list[Check]:
        runs = data["runs"]
        acc = {a: 100 * np.array([r[a]["accuracy"] for r in runs]) for a in ARMS}
        n = len(runs)
        gap, gap_spread, _ = seed_summary(acc["SB"] - acc["LB"])
        left, left_spread, _ = seed_summary(acc["SB"] - acc["LB+LR+GBN+RA"])
        fits = [self.log_beats_sqrt(r["SB"]["distance"]) for r in runs]
        margin = min(a - b for a, b in fits)
        checks = [
            Check("SB - LB test accuracy (points)", gap, "> its half-range over seeds",
                  n >= 3 and gap > gap_spread, gap_spread, n),
            Check("SB - (LB+LR+GBN+RA) test accuracy (points)", left,
                  "<= its half-range over seeds", n >= 3 and left <= left_spread,
                  left_spread, n),
            Check("R^2(log t) - R^2(sqrt t) of ||w_t - w_0||, SB first phase (min over seeds)",
                  margin, "> 0", margin > 0, seeds=n),
        ]
        for arm in ("LB+LR", "LB+LR+GBN"):
            mean, spread, _ = seed_summary(acc["SB"] - acc[arm])
            checks.append(Check(f"SB - ({arm}) test accuracy (points)", mean,
                                "recorded (not judged)", True, spread, n))
        return checks

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        for i, r in enumerate(data["runs"]):
            d = r["SB"]["distance"]
            a1.plot(np.arange(1, len(d) + 1), d, color=f"C{i}", label=f"seed {data['seeds'][i]}")
        a1.set(xscale="log", xlabel="step (SB, first phase)", ylabel="||w_t - w_0||")
        a1.legend(fontsize=8)
        acc = np.array([[100 * r[a]["accuracy"] for a in ARMS] for r in data["runs"]])
        a2.bar(range(len(ARMS)), acc.mean(0), yerr=np.ptp(acc, 0) / 2, capsize=3)
        a2.set_xticks(range(len(ARMS)), ARMS, rotation=20, fontsize=7)
        a2.set(ylabel="test accuracy (%)", ylim=(max(0, acc.min() - 10), 100))
        fig.tight_layout()
        return fig


PHENOMENA.register("train-longer", TrainLonger, papers=(37,), reproduces=True,
                   summary="large batch: equal updates + sqrt lr + ghost BN close the gap")
