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
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.phenomena._teacher import teacher_labels


def _bn_mlp(ghost: int | None, generator: torch.Generator) -> nn.Sequential:
    """20 -> 256 -> 256 -> 10 ReLU MLP with batch norm (ghost batch norm of virtual size
    ``ghost`` when given) after each hidden Linear; Kaiming-normal weights."""
    def norm() -> nn.Module:
        return nn.BatchNorm1d(256) if ghost is None else GhostBatchNorm(256, ghost_batch_size=ghost)

    model = nn.Sequential(nn.Linear(20, 256), norm(), nn.ReLU(), nn.Linear(256, 256), norm(),
                          nn.ReLU(), nn.Linear(256, 10))
    init_apply(model, "kaiming-normal", generator=generator)
    return model


class TrainLonger(Phenomenon):
    """A random teacher ``mlp`` (depth 2, width 64, ``kaiming-normal``) labels 20-dimensional
    Gaussian inputs into 10 classes (argmax); 4096 training and 4096 test points. Student:
    :func:`_bn_mlp`, SGD with momentum 0.9, constant learning rate, cross-entropy. Runs:
    small batch (SB) 32 at lr 0.05 for E epochs; naive large batch (LB) 1024 at lr
    0.05 sqrt(32) with batch norm, same E epochs (32x fewer updates); adapted LB: batch 1024,
    lr 0.05 sqrt(32), ghost batch norm of 32, as many updates as SB ("regime adaptation").
    E = 16 (2048 SB updates); quick: E = 2 (256). ``||w_t - w_0||`` (all weights) is logged
    along the SB run.

    Pass criterion (the notes' B14, written before running): a linear fit of
    ``||w_t - w_0||`` against log t over steps 10 .. end of the SB run has R^2 >= 0.95; the
    adapted LB run's test accuracy is within 1 point of SB's; the naive LB run is worse than
    SB by more than 1 point.

    Result (seed 0): reported FAIL (``reproduces=False``). This task shows no large-batch
    gap to close: the naive LB run is *better* than SB (by 2.8 points full, 1.5 quick), so
    the gap-closing claim cannot be tested here; the adapted LB run is 1.4 points below SB in
    full mode (3.9 above in quick). ``||w_t - w_0||`` is close to logarithmic early on
    (R^2 0.99 over steps 10-512, quick) but grows faster than log t later (R^2 0.93 over
    10-2048, full). Nothing was changed after the runs; a task with a real gap (e.g. a
    larger, noisier dataset where SB's gradient noise helps) was not tried for lack of CPU
    budget. Quick mode costs about 16 s of one core (the adapted LB run dominates).

    Deviations: the paper uses CIFAR/ImageNet convnets and step-decay schedules stretched by
    the batch ratio; here a synthetic task and constant learning rates.

    Quick mode (a regression guard, not the claim; issue 12): the full verdict is an honest
    FAIL, so the quick test compares the quick run's numbers with the values recorded from
    it (``quick_reference``); a change in the experiment turns the test red instead of being
    hidden behind an expected FAIL. The quick run was cut from 4 to 2 epochs for the test
    budget (issue 12) before its numbers were recorded.
    """

    name = "train-longer"
    papers = (37,)
    paper_figure = "Table 1 and the ||w_t - w_0|| vs log t figure (not re-read)"
    scale_downs = ("synthetic teacher task and a BN MLP instead of CIFAR/ImageNet convnets",
                   "16 epochs, constant lr (quick: 2 epochs)",
                   "one seed",)
    quick_reference = {
        "R^2 of ||w_t - w_0|| against log t (SB, t >= 10)": 0.9976192878607139,
        "SB - adapted LB test accuracy (points)": -1.0986328125,
        "SB - naive LB test accuracy (points)": 4.4189453125}
    quick_atol = 0.05
    claim = ("The large-batch generalization gap comes from too few updates: training as many "
             "updates with lr scaled by sqrt(batch ratio) and ghost batch norm closes it, "
             "while ||w_t - w_0|| grows logarithmically in t.")

    SMALL, LARGE, LR = 32, 1024, 0.05

    def _train(self, batch: int, lr: float, steps: int, ghost: int | None, data: tuple,
               seed: int, log: bool = False) -> dict[str, Any]:
        xtr, ytr, xte, yte = data
        g = torch.Generator().manual_seed(seed + 1)
        model = _bn_mlp(ghost, g)
        w0 = torch.cat([p.detach().flatten() for p in model.parameters()])
        opt = build_optimizer("sgd", model.parameters(), lr=lr, momentum=0.9)
        distance, logged = [], []
        order = torch.empty(0, dtype=torch.long)
        for step in range(1, steps + 1):
            if len(order) < batch:
                order = torch.cat([order, torch.randperm(len(xtr), generator=g)])
            idx, order = order[:batch], order[batch:]
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
            if log and (step & (step - 1) == 0 or step % 64 == 0):
                w = torch.cat([p.detach().flatten() for p in model.parameters()])
                distance.append((w - w0).norm().item())
                logged.append(step)
        model.eval()
        with torch.no_grad():
            accuracy = (model(xte).argmax(1) == yte).float().mean().item()
        return {"accuracy": accuracy, "steps": logged, "distance": distance}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        x, y = teacher_labels(8192, g)
        data = (x[:4096], y[:4096], x[4096:], y[4096:])
        epochs = 2 if quick else 16
        sb_steps = epochs * 4096 // self.SMALL
        lb_lr = self.LR * math.sqrt(self.LARGE / self.SMALL)
        return {
            "epochs": epochs,
            "small": self._train(self.SMALL, self.LR, sb_steps, None, data, seed, log=True),
            "naive": self._train(self.LARGE, lb_lr, epochs * 4096 // self.LARGE, None, data,
                                 seed),
            "adapted": self._train(self.LARGE, lb_lr, sb_steps, self.SMALL, data, seed),
        }

    def check(self, data: dict[str, Any]) -> list[Check]:
        steps = np.array(data["small"]["steps"], dtype=float)
        dist = np.array(data["small"]["distance"])
        keep = steps >= 10
        t, d = np.log(steps[keep]), dist[keep]
        slope, intercept = np.polyfit(t, d, 1)
        r2 = 1 - np.sum((d - (slope * t + intercept)) ** 2) / np.sum((d - d.mean()) ** 2)
        sb = data["small"]["accuracy"]
        adapted_gap = 100 * (sb - data["adapted"]["accuracy"])
        naive_gap = 100 * (sb - data["naive"]["accuracy"])
        return [
            Check("R^2 of ||w_t - w_0|| against log t (SB, t >= 10)", r2, ">= 0.95", r2 >= 0.95),
            Check("SB - adapted LB test accuracy (points)", adapted_gap, "<= 1",
                  adapted_gap <= 1),
            Check("SB - naive LB test accuracy (points)", naive_gap, "> 1", naive_gap > 1),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
        a1.plot(data["small"]["steps"], data["small"]["distance"], "o-", ms=3)
        a1.set(xscale="log", xlabel="step (SB)", ylabel="||w_t - w_0||")
        names = ("small", "naive", "adapted")
        a2.bar(names, [100 * data[k]["accuracy"] for k in names])
        a2.set(ylabel="test accuracy (%)")
        return fig


PHENOMENA.register("train-longer", TrainLonger, papers=(37,), reproduces=False,
                   summary="large batch: equal updates + sqrt lr + ghost BN close the gap")
