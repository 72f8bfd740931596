"""Locally regularised neural ODEs need fewer function evaluations at prediction time, at
similar accuracy (Pal, Edelman, Rackauckas, "Locally Regularized Neural Differential
Equations: Some Black Boxes Were Meant to Remain Closed!", ICML 2023; papers.md row 87)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trainlab.diffusion.digits import load_digits_tensor
from trainlab.models.neural_ode import NeuralODE
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, seed_summary

TOL = 1.4e-8  # the authors' MNIST-ODE abstol = reltol


class TimeDependentField(nn.Module):
    """The authors' MNIST-ODE field: ``[y, t] -> tanh(Dense(d+1, 100)) -> [h, t] ->
    Dense(101, d)`` (one hidden layer of 100, time appended to each layer's input)."""

    def __init__(self, dim: int, hidden: int = 100):
        super().__init__()
        self.l1, self.l2 = nn.Linear(dim + 1, hidden), nn.Linear(hidden + 1, dim)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        tt = t.expand(y.shape[0], 1).to(y.dtype)
        h = torch.tanh(self.l1(torch.cat([y, tt], 1)))
        return self.l2(torch.cat([h, tt], 1))


def _train(x, y, x_test, y_test, *, regularize: bool, steps: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # torch's default init, seeded, the caller's RNG restored
        torch.manual_seed(seed)
        ode = NeuralODE(TimeDependentField(x.shape[1]), rtol=TOL, atol=TOL).double()
        head = nn.Linear(x.shape[1], 10).double()
    opt = torch.optim.Adam([*ode.parameters(), *head.parameters()], lr=1e-3)
    for step in range(steps):
        idx = torch.randint(0, x.shape[0], (512,), generator=g)
        xb, yb = x[idx], y[idx]
        loss = F.cross_entropy(head(ode(xb)), yb)
        if regularize:  # w_reg decays exponentially from 5.0 to 2.5 over training
            w_reg = 5.0 * (2.5 / 5.0) ** (step / max(steps - 1, 1))
            loss = loss + w_reg * ode.regularizer(xb, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        nfe = ode.nfe(x_test)
        acc = float((head(ode(x_test)).argmax(1) == y_test).double().mean())
    return nfe, acc


class LocalRegularizationNFE(Phenomenon):
    """The authors' MNIST-ODE setting on scikit-learn's 8x8 digits: the ODE state is the image
    (64 values in [-1, 1]), the field :class:`TimeDependentField`, a linear classifier on
    ``y(1)``; Adam (lr 1e-3), batch 512, cross-entropy, tolerances 1.4e-8 (Dormand-Prince
    5(4)); the regularised arm adds ``w_reg * R`` (the unbiased local error estimate) with
    ``w_reg`` decaying exponentially from 5.0 to 2.5. 1497 training and 300 held-out images;
    120 steps (quick: 4), 3 seeds (quick: 1). Measured: the function evaluations of one solve
    over the 300 held-out images (prediction NFE) and the held-out accuracy.

    Pass criterion (from the abstract's "NFE ... 0.556-0.733x" and "similar accuracy",
    written before the run): the mean prediction-NFE ratio regularised / unregularised is at
    most 0.733 (the upper end of the paper's range), the NFE gap exceeds the sum of the two
    arms' seed half-ranges, and the regularised mean accuracy is at most 2 points below the
    unregularised one.

    Verdict (full mode, recorded 2026-12-06, 972 s on the shared loaded machine): FAIL on
    accuracy. The regulariser cuts the prediction NFE far more than the paper reports (80 ->
    20, ratio 0.25, identical over the 3 seeds), but after 120 steps the regularised models
    are 10.4 points less accurate (0.848 vs 0.952). With ``w_reg`` 5 -> 2.5 the penalty
    dominates the first steps; the paper trains 7500 steps, where the accuracy can catch up,
    so the step count is probably a scale-down the claim does depend on. A longer run does
    not fit the full-mode budget here; nothing else was tried. The quick run (4 steps) is a
    regression guard against the numbers recorded from it.

    Deviations from the paper: a scale-down of the authors' MNIST-ODE setting to scikit-learn's 8x8
    digits with a short training budget; the criterion comes from the abstract's numbers. The
    recorded verdict is FAIL on accuracy (see above).
    """

    name = "local-regularization-nfe"
    papers = (87,)
    claim = ("Penalising the adaptive solver's local error estimate at a random time cuts a "
             "neural ODE's prediction NFE to 0.556-0.733x at similar accuracy.")
    paper_figure = ("abstract (NFE 0.556-0.733x); the MNIST-ODE setting from the authors' "
                    "code (mlp.yml, construct.jl); the paper's tables were not read")
    scale_downs = ("8x8 digits (64-dim state) instead of MNIST (784)",
                   "120 Adam steps instead of 7500", "3 seeds",
                   "Dormand-Prince 5(4) instead of Tsit5 (torchdiffeq has no Tsit5); float64")
    quick_reference = {"prediction NFE ratio regularised / plain": 0.8125,
                       "NFE gap plain - regularised": 6.0,
                       "accuracy drop plain - regularised": 0.19333333333333336}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        images, labels = load_digits_tensor()
        x = images.flatten(1)
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(1234))
        test, train = perm[:300], perm[300:]
        steps, seeds = (4, 1) if quick else (120, 3)
        out: dict[str, list[float]] = {"nfe_plain": [], "nfe_reg": [], "acc_plain": [],
                                       "acc_reg": []}
        for k in range(seeds):
            for arm, reg in (("plain", False), ("reg", True)):
                nfe, acc = _train(x[train], labels[train], x[test], labels[test],
                                  regularize=reg, steps=steps, seed=1000 * seed + k)
                out[f"nfe_{arm}"].append(nfe)
                out[f"acc_{arm}"].append(acc)
        return {k: np.array(v, dtype=float) for k, v in out.items()}

    def check(self, data: dict[str, Any]) -> list[Check]:
        (plain, plain_hr, _), (reg, reg_hr, _) = (seed_summary(data["nfe_plain"]),
                                                  seed_summary(data["nfe_reg"]))
        ratio = reg / plain
        spread = (0.0 if math.isnan(plain_hr) else plain_hr) + (0.0 if math.isnan(reg_hr)
                                                                else reg_hr)
        acc_drop = float(data["acc_plain"].mean() - data["acc_reg"].mean())
        return [Check("prediction NFE ratio regularised / plain", ratio, "<= 0.733",
                      ratio <= 0.733),
                Check("NFE gap plain - regularised", plain - reg,
                      f"> sum of seed half-ranges = {spread:.3g}", plain - reg > spread),
                Check("accuracy drop plain - regularised", acc_drop, "<= 0.02",
                      acc_drop <= 0.02),
                Check("plain prediction NFE (mean)", plain, "reported", True),
                Check("plain held-out accuracy (mean)", float(data["acc_plain"].mean()),
                      "reported", True)]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 3.2))
        ax.scatter(data["nfe_plain"], data["acc_plain"], label="unregularised")
        ax.scatter(data["nfe_reg"], data["acc_reg"], label="local regulariser")
        ax.set(xlabel="prediction NFE", ylabel="held-out accuracy")
        ax.legend(fontsize=7)
        return fig


PHENOMENA.register("local-regularization-nfe", LocalRegularizationNFE, papers=(87,),
                   reproduces=False,
                   summary="neural ODE local error regulariser: prediction NFE vs accuracy")
