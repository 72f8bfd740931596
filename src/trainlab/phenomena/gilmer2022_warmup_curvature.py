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
    eta. Sharpness lambda(t) is tracked by the ``sharpness`` probe (warm-started Lanczos,
    10 iterations) through a :class:`trainlab.train.Monitor`, every 10 steps, with the
    ratio lr(t) lambda(t) / 2 it reports. Full: W = 1600 of T = 2000 steps; quick: W = 400 of
    T = 500.

    Pass criterion (from the paper's claim, fixed before the runs with these lengths):

    - no warmup: eta lambda_0 / 2 > 1 and the run diverges (non-finite loss) or its loss
      spikes above 2x the initial loss;
    - warmup: max_t lr(t) lambda(t) / 2 <= 1.25 over the whole run (the sharpness stays at
      or below 2/lr(t); 25% tolerance for the oscillation around 2/lr at the edge of
      stability and the 10-step measurement grid); the final lambda is <= 1.25 x 2/eta,
      i.e. GD has moved to a region more than 3x flatter than its start that tolerates eta;
      its loss never exceeds 1.5x the initial loss and ends below 0.1x.

    What was tried first: a faster warmup (W = 200 of T = 300, width 64) overshot to
    lr lambda / 2 = 1.96 when lr first reached 2/lambda_0 (the sharpness does not move
    before lr reaches it), then settled near 1.1 with a loss bump of 8%; the lengths above
    were then chosen to follow the paper's practice of warmups that are long relative to
    the instability time scale.

    Result: reported FAIL (``reproduces=False``) on one check. No warmup diverges within a few
    steps; with warmup the network moves to a region that tolerates eta (final
    eta lambda / 2 = 1.05 full / 1.10 quick, from 4 at init), its loss never rises above
    the initial value (max 1.00 / 1.03 of it) and it trains (final loss 0.005 / 0.016 of the
    initial). But the sharpness does not fall *before* the learning rate reaches
    2/lambda_0: lr(t) lambda(t) / 2 climbs with the ramp and overshoots to 1.35 (full) /
    1.73 (quick) before the instability has grown enough to push the network to flatter
    ground, then hovers near 1. So warmup here navigates *out of* the sharp region (the
    paper's "avoid -- or navigate out of") rather than keeping the sharpness below 2/lr
    throughout; the pre-registered 1.25 bound was not moved after seeing this.

    Deviations: the paper measures preconditioned sharpness for Adam and uses cross-entropy
    on real data (WMT, ImageNet, CIFAR); here plain GD (whose threshold is exactly 2/lr) on
    a synthetic mixture with the squared loss, whose sharpness does not shrink just because
    the logits grow.
    """

    name = "warmup-curvature"
    papers = (10,)
    claim = ("Without warmup a learning rate above 2/sharpness at initialization makes "
             "training diverge or spike; with learning-rate warmup the sharpness falls as the "
             "learning rate rises, staying near or below 2/lr, and the same learning rate "
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
                          probes=[Sharpness(every=10, max_iter=10)], total_steps=steps,
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
        return {"loss": np.array([v for _, v in hist["loss"]]),
                "lr": np.array([v for _, v in hist["lr"]]),
                "sharpness_steps": np.array([s for s, _ in hist.get("sharpness", [])]),
                "sharpness": np.array([v for _, v in hist.get("sharpness", [])]),
                "eos_ratio": np.array([v for _, v in hist.get("eos_ratio", [])])}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
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

    def check(self, data: dict[str, Any]) -> list[Check]:
        lr, lam0 = data["lr"], data["lambda0"]
        none, warm = data["none"], data["warm"]
        start = lr * lam0 / 2
        diverged = not np.isfinite(none["loss"]).all()
        finite = none["loss"][np.isfinite(none["loss"])]
        spike = float(finite.max() / none["loss"][0])
        ratio = warm["eos_ratio"][np.isfinite(warm["eos_ratio"])]
        max_ratio = float(ratio.max()) if ratio.size else float("inf")
        final_ratio = float(warm["sharpness"][-1] * lr / 2)
        w_loss = warm["loss"]
        w_spike = float(np.max(w_loss) / w_loss[0]) if np.isfinite(w_loss).all() else np.inf
        w_final = float(w_loss[-1] / w_loss[0])
        return [
            Check("no warmup: lr * lambda_0 / 2", start, "> 1 (unstable at init)", start > 1),
            Check("no warmup: max finite loss / initial", spike,
                  "> 2 (spike), or the loss became non-finite", diverged or spike > 2),
            Check("warmup: max_t lr(t) lambda(t) / 2", max_ratio, "<= 1.25 (EoS tolerance)",
                  max_ratio <= 1.25),
            Check("warmup: final lr * lambda / 2", final_ratio, "<= 1.25", final_ratio <= 1.25),
            Check("warmup: max loss / initial", w_spike, "<= 1.5 (no spike)", w_spike <= 1.5),
            Check("warmup: final loss / initial", w_final, "< 0.1 (trains at lr)", w_final < 0.1),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
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
        return fig


PHENOMENA.register("warmup-curvature", WarmupCurvature, papers=(10,), reproduces=False,
                   summary="warmup keeps lr x sharpness near 2 where no warmup diverges")
