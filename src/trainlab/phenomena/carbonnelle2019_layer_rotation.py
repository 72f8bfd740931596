"""Layer rotation tracks generalization: runs whose layers rotate further from their initial
weights (cosine distance) test better (Carbonnelle & De Vleeschouwer, "Layer rotation: a
surprisingly powerful indicator of generalization in deep networks?", 2019; papers.md
row 56)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from trainlab.curvature import trainable_params
from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.phenomena._teacher import teacher_labels
from trainlab.probes import PROBES, ProbeContext


class LayerRotation(Phenomenon):
    """Same network, data and number of steps; only the SGD learning rate changes, which
    changes how far the layers rotate.

    Setup (the notes' B5 setting): a random teacher ``mlp`` (depth 2, width 64, ReLU,
    ``kaiming-normal``) labels 20-dimensional Gaussian inputs into 10 classes (argmax);
    2000 training and 2000 test points; a student ``mlp`` depth 3 width 128 trained by SGD
    (batch 50) for 3000 steps (600 in quick mode) at lr in {0.003, 0.01, 0.03, 0.1}. Layer
    rotation = the ``rotation`` probe's cosine distance between final and initial weights,
    averaged over the weight matrices.

    Pass criterion (the notes' B5, from the paper's claim that larger rotation goes with
    better test accuracy): Spearman rho(mean rotation, test accuracy) >= 0.8 across the
    four runs.
    """

    name = "layer-rotation"
    papers = (56,)
    claim = ("Across training runs, the larger the layers' cosine distance from their initial "
             "weights, the better the test accuracy.")

    LRS = (0.003, 0.01, 0.03, 0.1)

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        x, y = teacher_labels(4000, g)
        xtr, ytr, xte, yte = x[:2000], y[:2000], x[2000:], y[2000:]
        steps = 600 if quick else 3000
        rotation, accuracy = [], []
        for lr in self.LRS:
            gen = torch.Generator().manual_seed(seed + 1)
            model = build_model("mlp", (20,), 10, depth=3, width=128)
            init_apply(model, "kaiming-normal", generator=gen)
            init = {k: v.clone() for k, v in trainable_params(model).items()}
            opt = build_optimizer("sgd", model.parameters(), lr=lr)
            for _ in range(steps):
                idx = torch.randint(0, 2000, (50,), generator=gen)
                opt.zero_grad()
                F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
                opt.step()
            ctx = ProbeContext(step=steps, model=model, loss_fn=F.cross_entropy,
                               batch=(xtr, ytr), init_params=init)
            measured = PROBES.get("rotation")().measure(ctx)
            rot = [float(v) for k, v in measured.items() if k.startswith("rotation/")]
            rotation.append(float(np.mean(rot)))
            with torch.no_grad():
                accuracy.append((model(xte).argmax(1) == yte).float().mean().item())
        return {"lrs": list(self.LRS), "rotation": rotation, "accuracy": accuracy}

    def check(self, data: dict[str, Any]) -> list[Check]:
        rho = float(spearmanr(data["rotation"], data["accuracy"]).statistic)
        return [Check("Spearman rho(rotation, test accuracy)", rho, ">= 0.8", rho >= 0.8)]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        ax.plot(data["rotation"], data["accuracy"], "o-")
        for lr, r, a in zip(data["lrs"], data["rotation"], data["accuracy"], strict=True):
            ax.annotate(f"lr {lr:g}", (r, a), fontsize=7)
        ax.set(xlabel="mean layer rotation (cosine distance)", ylabel="test accuracy")
        return fig


PHENOMENA.register("layer-rotation", LayerRotation, papers=(56,), reproduces=True,
                   summary="larger layer rotation from init goes with higher test accuracy")
