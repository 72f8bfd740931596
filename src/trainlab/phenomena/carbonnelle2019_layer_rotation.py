"""Layer rotation tracks generalization: training procedures in which every layer's weights
turn far from their initialization (cosine distance near 1) test better than those in which
some or all layers rotate less (Carbonnelle & De Vleeschouwer, "Layer rotation: a
surprisingly powerful indicator of generalization in deep networks?", 2019; papers.md
row 56)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, seed_summary
from trainlab.tasks import build_task


def layer_rate_multipliers(n_layers: int, alpha: float) -> list[float]:
    r"""The paper's per-layer rotation-rate multipliers (Sec. 4.1), first layer first:
    :math:`\alpha > 0` slows the first layers, :math:`m_l = (1-\alpha)^{5(L-1-l)/(L-1)}`
    (the first layer at :math:`(1-\alpha)^5`, the last at 1); :math:`\alpha < 0` slows the
    last layers, :math:`m_l = (1+\alpha)^{5l/(L-1)}`; :math:`\alpha = 0` is uniform."""
    if n_layers < 2 or alpha == 0:
        return [1.0] * n_layers
    if alpha > 0:
        return [(1 - alpha) ** (5 * (n_layers - 1 - i) / (n_layers - 1)) for i in range(n_layers)]
    return [(1 + alpha) ** (5 * i / (n_layers - 1)) for i in range(n_layers)]


class LayerRotation(Phenomenon):
    r"""The paper's protocol of Sec. 4: Layca (``layca`` optimizer: each SGD step turned into
    a rotation of each weight tensor by the angle :math:`\arctan(\rho_l)` at fixed norm) sets
    every layer's rotation rate :math:`\rho_l = \rho(0)\,m_l(\alpha)`
    (:func:`layer_rate_multipliers`), so the configurations differ in how far each layer
    rotates, and every configuration is trained with the same epoch budget and learning-rate
    schedule, to a training accuracy near 100%.

    Paper: Carbonnelle & De Vleeschouwer, "Layer rotation: a surprisingly powerful indicator
    of generalization in deep networks?", 2019 (arXiv 1806.01603 v2), papers.md row 56;
    Sec. 4 and Fig. 1: on five tasks (CNNs, ResNets, WRNs on CIFAR-10/100 and Tiny
    ImageNet) each panel shows, for one configuration, the layer rotation curves and the
    test-accuracy difference :math:`\Delta\eta` from the reference configuration
    :math:`\alpha = 0, \rho(0) = 3^{-3}`, in which all layers reach a cosine distance near
    1; the others slow the first layers (:math:`\alpha = 0.6`), the last layers
    (:math:`\alpha = -0.6`) or all layers (:math:`\rho(0) = 3^{-4}, 3^{-5}`). The abstract
    states the result: configurations in which all layers reach a cosine distance of 1
    consistently outperform the others. The training accuracies stay near 1 (0.82-1.0 in the
    authors' notebook, whose analysis keeps runs above 0.9). The configurations and the
    Layca rule are the authors' (code of ispgroupucl/layer-rotation-paper-experiments:
    ``layca`` updates kernels only, biases stay at their initial value; lr schedule x0.2 at
    70 of 80 epochs for the tiny-CNN task, training stops when the training loss is below
    1e-3).

    Setting: MNIST-1D (40-sample signals, 10 classes, 4000 training and 1000 test points),
    an ``mlp`` 40-256-256-10 with ReLU, ``kaiming-normal`` weights and zero biases that stay
    zero (the authors' Layca leaves biases alone); Layca-SGD on the cross-entropy, batch 128,
    100 epochs with the rates x0.2 from epoch 89 on (the tiny-CNN schedule's 70/80), stopping
    early when the full training loss is <= 1e-3. Configurations: the reference
    :math:`(\alpha, \rho(0)) = (0, 3^{-3})`, :math:`(0, 3^{-4})`, :math:`(0, 3^{-5})`,
    :math:`(-0.6, 3^{-3})`, :math:`(0.6, 3^{-3})`; 3 seeds (init, batches; the data split is
    MNIST-1D's). Layer rotation: the cosine distance between each weight matrix and its
    initial value at the end.

    Criterion (written before the full run, from Fig. 1): (a) the precondition of the
    comparison, every run ends with training accuracy > 0.9 (the authors' own filter);
    (b) Layca controls rotation: the median (over seeds) mean layer rotation increases with
    :math:`\rho(0)` (3^-5 < 3^-4 < 3^-3 at :math:`\alpha = 0`); (c) the claim: each of the four
    other configurations tests worse than the reference, beyond the seed spread: per seed
    :math:`\Delta\eta = ` test accuracy(configuration) - test accuracy(reference), and for
    every configuration mean :math:`\Delta\eta` + its half-range over seeds < 0 (the check
    reports the largest such value over the four configurations).

    Why the check measures the claim: every configuration has the same data, init, epoch
    budget, schedule and batches per seed; only the per-layer rotation rates differ, and (a)
    requires all of them to have fit the training set (the setting before this one compared
    plain-SGD learning rates, in which rotation and test accuracy both follow how far
    training got; Layca rotates the layers at a set rate whatever the gradient's size, which
    is why the paper uses it). What remains: the runs are compared at the same budget, not
    at exactly equal training loss, so a configuration that ends at 95% training accuracy
    is compared with one at 100% (the paper's own runs end at 82-100%); the test-accuracy
    gaps found (>= 4.8 points beyond the spread, 10.7 for the smallest rate) are of the
    size of that difference in fit (<= 5.4 points) or larger, and the check does not
    remove it.

    Result (full, seeds 0, 100, 200; 869 s wall on the shared 2-core machine at load ~15,
    94 s of CPU time, so ~2 minutes idle): PASS (``reproduces=True``). Every run fits (lowest
    final training accuracy 0.946); the median mean layer rotation rises with
    :math:`\rho(0)`; each of the four other configurations tests worse than the reference
    beyond the seed spread (largest mean + half-range of the difference: -0.048); the
    reference beats :math:`\rho(0) = 3^{-5}` by 0.107 +- 0.010 (half-range) in test
    accuracy. The paper's Fig. 1 differences have the same sign (its abstract: up to 30
    points of test accuracy between configurations).

    Quick mode (a regression guard, not the claim: a 5-configuration, 3-seed comparison
    needs minutes): the reference and :math:`\rho(0) = 3^{-5}` for 12 epochs, one seed; the
    test compares its numbers with the recorded ones (``quick_reference``). The training
    arithmetic differs between torch releases (same data and init), and over 12 epochs
    that moves the quick numbers by more than the accuracy resolution (1/1000): quick run,
    seed 0, torch 2.13.0 / 2.6.0: lowest final training accuracy 0.6845 / 0.686, rotation
    order 1 / 1, largest test-accuracy difference -0.189 / -0.201 (12 test points). The
    guard's absolute tolerance (``quick_atol``) is therefore 0.02 (20 test points).

    Why the claim cannot show in 20 s (issue 12's second quick pass, measured with one
    torch thread, seed 0, on the shared machine at load ~5): one 100-epoch run (3200 Layca
    steps) costs ~9 s of CPU at width 256 (2.8 ms per step; training accuracies 1.0, 1.0,
    0.994, 0.996, 0.948 for the five configurations), so the five configurations at two
    seeds need ~90 s. A narrower network is no way out: at width 64 a run still costs
    ~3.6 s (the per-step overhead dominates) and the precondition fails (training
    accuracies 0.88, 0.85, 0.76, 0.79, 0.65 after 100 epochs). The guard therefore stays.

    Deviations: the paper's networks are CNNs, ResNets and WRNs on image data for 80-250
    epochs (~4e4-1e5 steps); here an MLP on MNIST-1D (the paper itself uses an MLP on MNIST
    in Sec. 6) for 100 epochs of 32 steps, so the rotations reached at a given
    :math:`\rho(0)` are smaller than the paper's.

    Setting history (issue 12, before the full run): a 1-seed trial of this code path with 60
    epochs ended at training accuracies 1.0, 1.0, 0.95, 0.98, 0.88 (configurations in the
    order above; test accuracies 0.705, 0.628, 0.574, 0.610, 0.541), so alpha = 0.6 missed
    the precondition; the budget was raised to 100 epochs (nearer the paper's long
    budgets) before the criterion was committed and the full run made; the criterion was
    not changed. A trial with ``cnn1d`` (32 channels) was dropped: ~3x the cost per step,
    and after 40 epochs even the reference stayed at 0.91 training accuracy.

    Earlier results: (before issue 12) 4 plain-SGD learning rates at a fixed step count on a
    teacher-labelled task: a PASS confounded by training progress; (issue 12, first pass)
    plain-SGD rates {0.01, ..., 0.3} stopped at equal training loss 0.01 on that task: FAIL,
    per-seed rank correlation 0.13 +- 0.81.
    """

    name = "layer-rotation"
    papers = (56,)
    claim = ("Training configurations in which all layers rotate far from their initial "
             "weights (cosine distance near 1) generalize better than those in which some or "
             "all layers rotate less, at the same near-perfect training accuracy.")
    paper_figure = ("Fig. 1 (Sec. 4: test-accuracy differences of alpha = +-0.6 and "
                    "rho(0) = 3^-4, 3^-5 from the reference alpha = 0, rho(0) = 3^-3)")
    scale_downs = ("MNIST-1D (4000 training points) instead of CIFAR-10/100 and Tiny ImageNet",
                   "MLP 40-256-256-10 instead of CNNs/ResNets/WRNs",
                   "100 epochs of 32 steps instead of 80-250 epochs", "3 seeds",
                   "quick: 2 configurations, 12 epochs, one seed (regression guard)")
    quick_reference = {
        "lowest final training accuracy": 0.684499979019165,
        "median mean layer rotation increases with rho(0) (1 = yes)": 1.0,
        "largest (mean + half-range) over configurations of test accuracy minus the "
        "reference's": -0.18900001049041748}
    quick_atol = 0.02  # torch 2.13 vs 2.6 moved a quick number by 0.012 (docstring)

    CONFIGS = ((0.0, 3.0**-3), (0.0, 3.0**-4), (0.0, 3.0**-5), (-0.6, 3.0**-3),
               (0.6, 3.0**-3))
    EPOCHS, DECAY_FROM, BATCH, TARGET, WIDTH = 100, 88, 128, 1e-3, 256

    def _train(self, alpha: float, rho0: float, epochs: int, decay_from: int,
               seed: int) -> dict[str, Any]:
        task = build_task("mnist1d")
        xtr, ytr, xte, yte = task.x_train, task.y_train, task.x_test, task.y_test
        gen = torch.Generator().manual_seed(seed)
        model = build_model("mlp", (40,), 10, depth=2, width=self.WIDTH)
        init_apply(model, "kaiming-normal", generator=gen)
        weights = [p for p in model.parameters() if p.dim() >= 2]
        for p in model.parameters():
            p.requires_grad_(p.dim() >= 2)  # the authors' Layca leaves biases at init (0)
        init = [w.detach().clone() for w in weights]
        mults = layer_rate_multipliers(len(weights), alpha)
        opt = build_optimizer("layca", [{"params": [w], "lr": rho0 * m}
                                        for w, m in zip(weights, mults, strict=True)],
                              lr=rho0)
        train_loss, epoch = float("inf"), 0
        for epoch in range(1, epochs + 1):
            factor = 0.2 if epoch > decay_from else 1.0
            for group, m in zip(opt.param_groups, mults, strict=True):
                group["lr"] = rho0 * m * factor
            for idx in torch.randperm(len(xtr), generator=gen).split(self.BATCH):
                opt.zero_grad()
                F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
                opt.step()
            with torch.no_grad():
                train_loss = F.cross_entropy(model(xtr), ytr).item()
            if train_loss <= self.TARGET:
                break
        with torch.no_grad():
            train_acc = (model(xtr).argmax(1) == ytr).float().mean().item()
            test_acc = (model(xte).argmax(1) == yte).float().mean().item()
        rotation = [1.0 - F.cosine_similarity(w.detach().flatten(), w0.flatten(), 0).item()
                    for w, w0 in zip(weights, init, strict=True)]
        return {"alpha": alpha, "rho0": rho0, "epochs": epoch, "train_loss": train_loss,
                "train_acc": train_acc, "test_acc": test_acc, "rotation": rotation}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        configs = (self.CONFIGS[0], self.CONFIGS[2]) if quick else self.CONFIGS
        epochs, decay_from = (12, 10) if quick else (self.EPOCHS, self.DECAY_FROM)
        seeds = [seed] if quick else [seed + 100 * i for i in range(3)]
        runs = [[self._train(a, r, epochs, decay_from, sd) for a, r in configs] for sd in seeds]
        return {"configs": [list(c) for c in configs], "seeds": seeds, "runs": runs}

    def check(self, data: dict[str, Any]) -> list[Check]:
        runs = data["runs"]  # seeds x configs, the reference first
        n = len(runs)
        train = np.array([[r["train_acc"] for r in row] for row in runs])
        test = np.array([[r["test_acc"] for r in row] for row in runs])
        rot = np.array([[np.mean(r["rotation"]) for r in row] for row in runs])
        configs = [tuple(c) for c in data["configs"]]
        uniform = sorted((c[1], i) for i, c in enumerate(configs) if c[0] == 0.0)
        med_rot = [float(np.median(rot[:, i])) for _, i in uniform]
        monotone = all(a < b for a, b in zip(med_rot, med_rot[1:]))
        worst = -np.inf
        for i in range(1, len(configs)):
            mean, spread, _ = seed_summary(test[:, i] - test[:, 0])
            worst = max(worst, mean + (spread if n > 1 else 0.0))
        ref_gain, ref_spread, _ = seed_summary(test[:, 0] - test[:, [i for _, i in uniform][0]])
        return [
            Check("lowest final training accuracy", float(train.min()),
                  "> 0.9 (every run fits; the authors' filter)", train.min() > 0.9, seeds=n),
            Check("median mean layer rotation increases with rho(0) (1 = yes)", float(monotone),
                  "== 1 (Layca controls rotation)", monotone, seeds=n),
            Check("largest (mean + half-range) over configurations of test accuracy minus "
                  "the reference's", float(worst), "< 0 (all worse, beyond the seed spread)",
                  bool(worst < 0), seeds=n),
            Check("test accuracy, reference - smallest rho(0) (info)", ref_gain, "reported",
                  True, ref_spread, n),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.4))
        for j, (alpha, rho0) in enumerate(data["configs"]):
            pts = [(np.mean(row[j]["rotation"]), row[j]["test_acc"]) for row in data["runs"]]
            ax.plot(*zip(*pts, strict=True), "o", color=f"C{j}",
                    label=f"alpha {alpha:g}, rho(0) 3^{np.log(rho0) / np.log(3):.0f}")
        ax.set(xlabel="mean layer rotation (cosine distance)",
               ylabel="test accuracy at the end")
        ax.legend(fontsize=7)
        return fig


PHENOMENA.register("layer-rotation", LayerRotation, papers=(56,), reproduces=True,
                   summary="configurations whose layers all rotate far (Layca) generalize best")
