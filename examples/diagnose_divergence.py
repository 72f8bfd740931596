"""Tutorial: diagnose a diverging run with the probes, then fix it.

Gradient descent on a quadratic is stable only while ``lr * lambda_max / 2 < 1`` (the
``eos_ratio`` the ``sharpness`` probe records; "Gradient descent on neural networks
typically occurs at the edge of stability", Cohen et al. 2021, papers.md row 65). This
script trains an MLP with full-batch gradient descent at a learning rate far above that
edge, reads the recorded probes back from the run store to say why the run diverged, and
trains again at ``lr = 1 / lambda_max`` measured at step 0.

Run: python examples/diagnose_divergence.py [--steps 30] [--store DIR]
The same from the command line:
    trainlab run --task gaussian-mixture --model mlp --optim sgd --lr 8 --schedule constant \\
        --batch-size 0 --probes grad-norm,update-ratio,sharpness --every 1 --steps 30
"""

from __future__ import annotations

import argparse
import math

import torch

from trainlab.store import RunStore
from trainlab.train import RunConfig, Trainer


def config(lr: float, steps: int) -> RunConfig:
    return RunConfig(task="gaussian-mixture", task_params={"n_train": 256, "n_test": 64},
                     model="mlp", model_params={"width": 32}, optim="sgd", lr=lr,
                     schedule="constant", schedule_params={}, batch_size=0, steps=steps,
                     probes="grad-norm,update-ratio,sharpness", every=1, name=f"gd-lr{lr:g}")


def diagnose(store: RunStore, run_id: str, lr: float) -> dict[str, float]:
    """What the probes say about a run: the sharpness and the stability ratio at step 0,
    and the growth rate of the gradient norm per step over the steps recorded."""
    m = store.metrics(run_id)
    steps, gnorm = m["grad_norm"]
    finite = [(s, g) for s, g in zip(steps, gnorm) if math.isfinite(g) and g > 0]
    (s0, g0), (s1, g1) = finite[0], finite[-1]
    sharp = float(m["sharpness"][1][0])
    return {"sharpness_0": sharp, "eos_ratio_0": lr * sharp / 2,
            "grad_norm_growth_per_step": (g1 / g0) ** (1 / max(s1 - s0, 1)),
            "largest_update_ratio": float(max(m["update_ratio"][1], default=math.nan))}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--store", default="trainlab-runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    store = RunStore(args.store)

    lr = 8.0
    bad = Trainer(config(lr, args.steps), store=store, report=False).run()
    why = diagnose(store, bad.run_id, lr)
    print(f"lr={lr:g}: {bad.status}" + (f" at step {bad.summary['diverged_at']}"
                                        if bad.status == "diverged" else ""))
    print(f"  sharpness at step 0 {why['sharpness_0']:.3g}: lr*sharpness/2 = "
          f"{why['eos_ratio_0']:.3g} (> 1: gradient descent is unstable along the top "
          f"Hessian direction)")
    print(f"  the gradient norm grew x{why['grad_norm_growth_per_step']:.3g} per step; "
          f"largest update/weight ratio {why['largest_update_ratio']:.3g}")

    fixed_lr = 1.0 / why["sharpness_0"]  # eos_ratio 0.5 at step 0
    good = Trainer(config(fixed_lr, args.steps), store=store).run()
    print(f"lr=1/sharpness={fixed_lr:.3g}: {good.status}, final loss "
          f"{good.summary['final_loss']:.4g}; report: {good.report}")
    return {"bad": bad, "good": good, "diagnosis": why, "fixed_lr": fixed_lr}


if __name__ == "__main__":
    main()
