"""SGD's dynamical stability bounds the Hessian trace: a minimum that single-example SGD with
step lr can stay at has tr(H) <= 2/lr, so larger steps find flatter (lower-trace) minima (Wu &
Su, "The Implicit Regularization of Dynamical Stability in Stochastic Gradient Descent", ICML
2023; papers.md row 30)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainlab.curvature import HessianOperator, hutchinson_trace
from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon


def _half_mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 0.5 * (out - target).pow(2).mean()


class TraceBound(Phenomenon):
    """Over-parameterized two-layer ReLU regression: n = 50 points in 5 dimensions labelled
    by a random ReLU teacher (width 20); student ``mlp`` depth 1, width 100,
    ``kaiming-normal``; loss ``mean_i (f_i - y_i)^2 / 2``. SGD with batch 1 (a fixed random
    order per epoch) at lr in {0.01, 0.03, 0.1} until the training loss is < 1e-4 (cap 300
    epochs; quick: 100). At the end, tr(H) of the full training loss by Hutchinson's
    estimator (``trainlab.curvature``, 100 Rademacher probes).

    Pass criterion (the notes' B16; the bound is 2/lr, the 20% margin covers the estimator's
    error and the loss-normalization caveat the notes flag): at least 2 runs converge; every
    converged run has lr x tr(H) <= 2.4; and tr(H) decreases as lr increases across the
    converged runs.

    Result: reported FAIL (``reproduces=False``). The lr = 0.01 run converges (full setting)
    with lr x tr(H) = 1.12, inside the bound, but the lr = 0.03 and 0.1 runs diverge: the
    He-initialized student's Hessian trace (~110 near the end of the small-lr run) is far
    above 2/lr for them, and batch-1 SGD blows up instead of moving to a flatter region. So
    the trend in lr cannot be measured with the notes' grid at this initialization scale; a
    smaller init or lr grid was not tried after seeing this. Quick mode (100 epochs) ends
    before even the lr = 0.01 run reaches the 1e-4 loss.

    Quick mode (a regression guard, not the claim; issue 12): the full verdict is an honest
    FAIL, so the quick test compares the quick run's numbers with the values recorded from
    it (``quick_reference``); a change in the experiment turns the test red instead of being
    hidden behind an expected FAIL. Only the finite numbers are guarded.
    """

    name = "sgd-trace-bound"
    papers = (30,)
    paper_figure = ("the abstract's tr(H) <= 2/lr bound for SGD-stable minima (theorem "
                    "numbers not re-read)")
    scale_downs = ("n = 50 points, a width-100 two-layer ReLU student",
                   "3 learning rates, at most 300 epochs (quick: 100)",)
    quick_reference = {
        "converged runs": 0.0,
        "tr(H) decreasing in lr": 0.0}
    claim = ("Minima that single-example SGD with step lr converges to satisfy "
             "tr(H) <= 2/lr, so larger steps select flatter minima.")

    LRS = (0.01, 0.03, 0.1)

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(50, 5, generator=g, dtype=torch.float64)
        teacher = build_model("mlp", (5,), 1, depth=1, width=20).double()
        init_apply(teacher, "kaiming-normal", generator=g)
        with torch.no_grad():
            y = teacher(x)
        epochs = 100 if quick else 300
        out: dict[str, Any] = {"lrs": list(self.LRS), "trace": [], "stderr": [],
                               "converged": [], "final_loss": []}
        for lr in self.LRS:
            gen = torch.Generator().manual_seed(seed + 1)
            model = build_model("mlp", (5,), 1, depth=1, width=100).double()
            init_apply(model, "kaiming-normal", generator=gen)
            opt = build_optimizer("sgd", model.parameters(), lr=lr)
            loss = float("inf")
            for _ in range(epochs):
                for i in torch.randperm(50, generator=gen):
                    opt.zero_grad()
                    _half_mse(model(x[i:i + 1]), y[i:i + 1]).backward()
                    opt.step()
                with torch.no_grad():
                    loss = _half_mse(model(x), y).item()
                if loss < 1e-4 or not np.isfinite(loss):
                    break
            if np.isfinite(loss):
                est = hutchinson_trace(HessianOperator(model, _half_mse, (x, y)),
                                       num_matvecs=100,
                                       generator=torch.Generator().manual_seed(seed + 2))
                trace, stderr = float(est.value), float(est.stderr)
            else:  # diverged
                trace, stderr = float("nan"), float("nan")
            out["trace"].append(trace)
            out["stderr"].append(stderr)
            out["converged"].append(bool(loss < 1e-4))
            out["final_loss"].append(loss)
        return out

    def check(self, data: dict[str, Any]) -> list[Check]:
        conv = [i for i, c in enumerate(data["converged"]) if c]
        products = [data["lrs"][i] * data["trace"][i] for i in conv]
        traces = [data["trace"][i] for i in conv]
        worst = max(products) if products else float("inf")
        falling = len(traces) >= 2 and bool(np.all(np.diff(traces) < 0))
        return [
            Check("converged runs", len(conv), ">= 2", len(conv) >= 2),
            Check("max lr x tr(H) over converged runs", worst, "<= 2.4 (bound 2)",
                  worst <= 2.4),
            Check("tr(H) decreasing in lr", float(falling), "== 1", falling),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        lrs = np.array(data["lrs"])
        ax.errorbar(lrs, data["trace"], yerr=data["stderr"], fmt="o-", label="tr(H) (SGD, B=1)")
        ax.plot(lrs, 2 / lrs, "k--", label="2 / lr")
        ax.set(xscale="log", yscale="log", xlabel="lr", ylabel="Hessian trace")
        ax.legend(fontsize=8)
        return fig


PHENOMENA.register("sgd-trace-bound", TraceBound, papers=(30,), reproduces=False,
                   summary="SGD minima satisfy tr(H) <= 2/lr: larger steps, flatter minima")
