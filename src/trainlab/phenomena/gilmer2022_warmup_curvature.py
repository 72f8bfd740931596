"""Learning-rate warmup lets gradient descent leave the high-curvature region it starts in,
so that a learning rate which diverges (or spikes) from the start trains stably after a
warmup ("A Loss Curvature Perspective on Training Instability in Deep Learning", Gilmer,
Ghorbani, Garg, Kudugunta, Neyshabur, Cardoze, Dahl, Nado & Firat, ICLR 2022; papers.md
row 10)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.curvature import make_hvp, top_eigenvalue
from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.optim.schedules import ScheduleLR, constant, linear_warmup
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.probes.sharpness import Sharpness
from trainlab.tasks import build_task
from trainlab.train import Monitor


def _half_mse(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """0.5 mean_i ||f(x_i) - onehot(y_i)||^2."""
    targets = F.one_hot(labels, outputs.shape[1]).to(outputs.dtype)
    return 0.5 * (outputs - targets).pow(2).sum(1).mean()


class WarmupCurvature(Phenomenon):
    """Full-batch gradient descent on the ``gaussian-mixture`` task (d = 20, 10 classes,
    256 training points), ``mlp`` 20-64-64-10 tanh, ``xavier-normal`` init, float64, squared
    loss on one-hot targets. The initial sharpness lambda_0 (power iteration to 1e-6) sets
    the target learning rate eta = 4 x 2/lambda_0, so GD at eta starts with
    eta lambda_0 / 2 = 4, far beyond the stability threshold of 1. Two runs from the same
    init: constant eta (no warmup), and a linear warmup from 0 to eta over W steps, then
    eta. Sharpness lambda(t) is tracked by the ``sharpness`` probe (warm-started Lanczos, at
    most 30 products; only values it flags converged count) through a
    :class:`trainlab.train.Monitor`, every 10 steps, with the ratio lr(t) lambda(t) / 2 it
    reports. Full: W = 1600 of T = 2000 steps; quick: W = 400 of
    T = 500.

    Paper: Gilmer et al., ICLR 2022 (arXiv 2110.04369), papers.md row 10. Abstract (read):
    successful settings let the early trajectory "avoid -- or navigate out of -- regions of
    high curvature" into flatter regions that tolerate a higher learning rate, and warmup is
    one such setting. The warmup figures (recalled, the body was not available to us when
    this was rewritten): under warmup the top Hessian eigenvalue falls while the learning rate
    rises, lr x sharpness hovering near the stability threshold 2, while the same learning
    rate without warmup is unstable at the start.

    Criterion (rewritten for issue 12 from the paper's claim, before the rerun; the earlier
    bound "lr(t) lambda(t)/2 <= 1.25 at every step" forbade the paper's "navigate out of" and
    was dropped as not being the paper's claim). For every seed (3 seeds in full mode, as a
    comparison of two arms; 1 in quick mode), and reported as the worst seed:

    - no warmup: eta lambda_0 / 2 > 1 (precondition: the target rate is unstable at init) and
      the run diverges (non-finite loss) or its loss spikes above 2x the initial loss;
    - warmup reaches a region that tolerates eta: the final eta lambda / 2 <= 1.1 (the edge of
      stability is 1; 10% for the Lanczos estimate and the oscillation at the
      edge), from 4 at the start;
    - during the warmup the sharpness follows the rising rate down: the median of
      lr(t) lambda(t) / 2 over the second half of the warmup is <= 1.25 (hovering near the
      threshold, a transient overshoot allowed);
    - warmup trains stably: loss never above 1.5x the initial loss, final loss < 0.1x.

    Why this measures the claim: both arms start from the same weights with the same target
    rate; the only difference is the schedule, and what is measured is where each one goes
    in curvature (lambda relative to 2/lr), which is the paper's explanation.

    Result: PASS. Full (3 seeds, 77 s): every no-warmup run diverges (eta lambda_0 / 2 = 4);
    with warmup the worst seed ends at eta lambda / 2 = 1.053, hovers at a median 1.073 in the
    second half of the warmup, its loss never above the initial value and ending at 0.0048 of
    it. Quick (1 seed, 14 s): 1.096, 1.124, 1.03, 0.016.

    Earlier results (before issue 12, one seed): no warmup diverges within a few steps; with
    warmup the final eta lambda / 2 = 1.05 (full) from 4 at init, the loss never above its
    initial value and ending at 0.005 of it; lr lambda / 2 overshot to 1.35 (full) / 1.73
    (quick) once, when the ramp first reached 2/lambda_0, then hovered near 1.

    Deviations: the paper measures preconditioned sharpness for Adam and uses cross-entropy
    on real data (WMT, ImageNet, CIFAR); here plain GD (whose threshold is exactly 2/lr) on
    a synthetic mixture with the squared loss, whose sharpness does not shrink just because
    the logits grow.
    """

    name = "warmup-curvature"
    papers = (10,)
    paper_figure = "Gilmer et al. 2022, warmup section (lambda_1 against 2/lr during warmup)"
    scale_downs = ("WMT/CIFAR/ImageNet -> Gaussian mixture, d = 20, 10 classes, 256 points",
                   "Transformer/ResNet -> MLP 20-64-64-10 tanh",
                   "Adam/momentum -> full-batch GD (threshold exactly 2/lr)",
                   "2000 steps, warmup 1600 (quick: 500, 400)")
    claim = ("Without warmup a learning rate above 2/sharpness at initialization makes "
             "training diverge or spike; with learning-rate warmup the network navigates to "
             "flatter regions that tolerate that learning rate (sharpness near 2/lr) and "
             "trains stably.")

    def _setup(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        task = build_task("gaussian-mixture", dim=20, classes=10, n_train=256, n_test=16,
                          data_seed=seed)
        return task.x_train.double(), task.y_train

    def _model(self, seed: int) -> torch.nn.Module:
        model = build_model("mlp", (20,), 10, depth=2, width=64, activation="tanh").double()
        init_apply(model, "xavier-normal", generator=torch.Generator().manual_seed(seed))
        return model

    def _train(self, x: torch.Tensor, y: torch.Tensor, lr: float, steps: int, warmup: int,
               seed: int) -> dict[str, np.ndarray]:
        model = self._model(seed)
        opt = build_optimizer("sgd", model.parameters(), lr=lr)
        schedule = linear_warmup(steps, warmup=warmup) if warmup else constant(steps)
        scheduler = ScheduleLR(opt, schedule)
        monitor = Monitor(model, loss_fn=_half_mse, optimizer=opt,
                          probes=[Sharpness(every=10, max_iter=30)], total_steps=steps,
                          seed=seed)
        for k in range(steps + 1):
            opt.zero_grad()
            loss = _half_mse(model(x), y)
            loss.backward()
            if not monitor.step(loss, (x, y)) or k == steps:
                break
            opt.step()
            scheduler.step()
        monitor.finish()
        hist = monitor.history
        sharp = hist.get("sharpness", [])
        # the probe gives no eos_ratio where the sharpness is NaN (a diverging run): NaN
        # there, so that the ratios stay aligned with sharpness_steps
        ratio = dict(hist.get("eos_ratio", []))
        return {"loss": np.array([v for _, v in hist["loss"]]),
                "lr": np.array([v for _, v in hist["lr"]]),
                "sharpness_steps": np.array([s for s, _ in sharp]),
                "sharpness": np.array([v for _, v in sharp]),
                "eos_ratio": np.array([ratio.get(s, np.nan) for s, _ in sharp])}

    def _run_seed(self, quick: bool, seed: int) -> dict[str, Any]:
        steps, warmup = (500, 400) if quick else (2000, 1600)
        x, y = self._setup(seed)
        model = self._model(seed)
        hvp, dim = make_hvp(model, _half_mse, x, y)
        lam0 = top_eigenvalue(hvp, dim, max_iter=200, tol=1e-6, dtype=torch.float64,
                              generator=torch.Generator().manual_seed(seed)).values[0].item()
        lr = 4 * 2 / lam0
        return {"lambda0": lam0, "lr": lr, "steps": steps, "warmup": warmup,
                "none": self._train(x, y, lr, steps, 0, seed),
                "warm": self._train(x, y, lr, steps, warmup, seed)}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        seeds = [seed] if quick else [seed, seed + 1, seed + 2]
        return {"seeds": [self._run_seed(quick, s) for s in seeds]}

    @staticmethod
    def _measure(data: dict[str, Any]) -> dict[str, float]:
        lr, lam0, warmup = data["lr"], data["lambda0"], data["warmup"]
        none, warm = data["none"], data["warm"]
        finite = none["loss"][np.isfinite(none["loss"])]
        diverged = not np.isfinite(none["loss"]).all()
        steps, ratio = warm["sharpness_steps"], warm["eos_ratio"]
        late = (steps >= warmup / 2) & (steps <= warmup) & np.isfinite(ratio)
        w_loss = warm["loss"]
        ok = np.isfinite(w_loss).all()
        return {"start": lr * lam0 / 2,
                "spike": np.inf if diverged else float(finite.max() / none["loss"][0]),
                "final_ratio": float(warm["sharpness"][-1] * lr / 2) if ok else np.inf,
                "late_ratio": float(np.median(ratio[late])) if late.any() else np.inf,
                "w_spike": float(np.max(w_loss) / w_loss[0]) if ok else np.inf,
                "w_final": float(w_loss[-1] / w_loss[0]) if ok else np.inf}

    def check(self, data: dict[str, Any]) -> list[Check]:
        per_seed = [self._measure(d) for d in data["seeds"]]
        worst = {k: max(m[k] for m in per_seed) for k in per_seed[0]}
        start = min(m["start"] for m in per_seed)
        spike = min(m["spike"] for m in per_seed)
        return [
            Check("no warmup: lr * lambda_0 / 2 (min over seeds)", start,
                  "> 1 (unstable at init)", start > 1),
            Check("no warmup: max loss / initial (min over seeds; inf = diverged)",
                  min(spike, 1e300), "> 2 (spike) or diverged", spike > 2),
            Check("warmup: final lr * lambda / 2", worst["final_ratio"],
                  "<= 1.1 (tolerates lr; edge = 1)", worst["final_ratio"] <= 1.1),
            Check("warmup: median lr(t) lambda(t) / 2, 2nd half of warmup", worst["late_ratio"],
                  "<= 1.25 (follows the threshold)", worst["late_ratio"] <= 1.25),
            Check("warmup: max loss / initial", worst["w_spike"], "<= 1.5 (no spike)",
                  worst["w_spike"] <= 1.5),
            Check("warmup: final loss / initial", worst["w_final"], "< 0.1 (trains at lr)",
                  worst["w_final"] < 0.1),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
        data = data["seeds"][0]
        for key, label in (("none", "no warmup"), ("warm", f"warmup {data['warmup']} steps")):
            run = data[key]  # clipped: a diverging run's values overflow a log axis
            ratio = np.clip(np.nan_to_num(run["eos_ratio"], nan=1e6, posinf=1e6), 1e-2, 1e6)
            loss = np.clip(np.nan_to_num(run["loss"], nan=1e6, posinf=1e6), 1e-6, 1e6)
            line, = a1.plot(run["sharpness_steps"], ratio, label=label)
            a2.plot(loss, color=line.get_color(), label=label)
        a1.axhline(1.0, color="gray", ls="--", lw=0.8)
        a1.set(xlabel="step", ylabel="lr(t) x sharpness / 2 (clipped)", yscale="log")
        a2.set(xlabel="step", ylabel="training loss", yscale="log")
        a1.legend(fontsize=8)
        a1.set_title("first seed", fontsize=8)
        return fig


PHENOMENA.register("warmup-curvature", WarmupCurvature, papers=(10,), reproduces=True,
                   summary="warmup keeps lr x sharpness near 2 where no warmup diverges")
