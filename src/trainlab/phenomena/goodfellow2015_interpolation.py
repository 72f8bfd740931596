"""Along the straight line from initialization to the trained solution the loss decreases
monotonically, with no barrier (Goodfellow, Vinyals & Saxe, "Qualitatively characterizing
neural network optimization problems", ICLR 2015; papers.md row 104)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from trainlab.curvature import trainable_params
from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.tasks.gaussian_mixture import gaussian_mixture


class LinearInterpolation(Phenomenon):
    """Train an MLP, then evaluate the training loss at ``(1 - a) theta_0 + a theta_T``.

    Setup (the notes' B6 setting): 10-class Gaussian mixture in 20 dimensions (1000 points,
    means of scale 1), ``mlp`` of depth 2 and width 128 (ReLU), ``kaiming-normal`` init,
    minibatch SGD (lr 0.1, batch 100) for 2000 steps (600 in quick mode), then 101 values
    of ``a`` in [0, 1] on the full training set.

    Pass criterion (the notes' B6, from the paper's "no significant barrier, roughly monotone
    decrease"): at most 2 increases larger than 1e-3 L(0) between consecutive points of the
    path, L(0.5) <= L(0), and the end point below 0.5 L(0) (training actually happened).

    Why the check measures the claim: the measure is the paper's, the training loss on the
    straight line between the initial and the final weights of one run; the end-point check
    ensures the run really trained (a path between two nearby points would be trivially
    monotone), and the tolerance of 1e-3 L(0) per step and at most 2 small rises stands for
    the paper's 'roughly monotone'. One seed: the claim is about each run's own path, not a
    comparison between arms.

    Deviations from the paper: a scale-down: a 10-class Gaussian mixture and a small MLP instead of
    the paper's image datasets and networks, and the path is evaluated on [0, 1] only; the
    tolerances are this library's reading of 'roughly monotone' (above).
    """

    name = "linear-interpolation"
    papers = (104,)
    paper_figure = ("the 1-D linear-interpolation plots of the training loss from init to "
                    "solution (figure numbers not re-read)")
    scale_downs = ("10-class Gaussian mixture (1000 points) and a 2x128 MLP instead of "
                   "MNIST/CIFAR networks",
                   "2000 SGD steps (quick: 600)",)
    claim = ("The training loss decreases monotonically along the straight line from the "
             "initial to the trained weights: no barrier is crossed.")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        x, y = gaussian_mixture(1000, 20, 10, generator=g)
        model = build_model("mlp", (20,), 10, depth=2, width=128)
        init_apply(model, "kaiming-normal", generator=g)
        theta0 = {k: v.clone() for k, v in trainable_params(model).items()}
        opt = build_optimizer("sgd", model.parameters(), lr=0.1)
        steps = 600 if quick else 2000
        for _ in range(steps):
            idx = torch.randint(0, len(x), (100,), generator=g)
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        theta1 = trainable_params(model)
        alphas = np.linspace(0, 1, 101)
        losses = []
        with torch.no_grad():
            for a in alphas:
                p = {k: (1 - a) * theta0[k] + a * theta1[k] for k in theta0}
                losses.append(F.cross_entropy(functional_call(model, p, (x,)), y).item())
        return {"alpha": alphas, "loss": np.array(losses)}

    def check(self, data: dict[str, Any]) -> list[Check]:
        loss = data["loss"]
        ups = int(np.sum(np.diff(loss) > 1e-3 * loss[0]))
        mid = float(loss[50] / loss[0])
        end = float(loss[-1] / loss[0])
        return [
            Check("increases > 1e-3 L(0) along the path", ups, "<= 2", ups <= 2),
            Check("L(0.5) / L(0)", mid, "<= 1", mid <= 1),
            Check("L(1) / L(0)", end, "< 0.5 (trained)", end < 0.5),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(data["alpha"], data["loss"])
        ax.set(xlabel="alpha (0 = init, 1 = trained)", ylabel="training loss")
        return fig


PHENOMENA.register("linear-interpolation", LinearInterpolation, papers=(104,), reproduces=True,
                   summary="loss is monotone along the line from init to solution")
