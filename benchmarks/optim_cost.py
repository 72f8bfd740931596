"""Cost of the issue-6 optimizers on MNIST-1D (CPU).

1. Per-step wall time of each method as a multiple of one plain gradient step (forward,
   backward, SGD update) on the same model and batch, measured in this process.
2. Steps to reach a target training loss, against AdamW at the best of a small learning-rate
   grid (full batch, fixed budget).

Usage: python benchmarks/optim_cost.py [--width 128] [--batch 512] [--budget 150]
       [--methods sam,dasa,...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from trainlab.optim import build_optimizer
from trainlab.optim.loss_closure import make_closure
from trainlab.tasks import build_task

METHODS = {
    "sam": {"lr": 0.5, "momentum": 0.9},
    "gam": {"lr": 0.5, "momentum": 0.9},
    "gradient-regularization": {"lr": 0.5, "momentum": 0.9},
    "entropy-sgd": {"lr": 1.0, "inner_steps": 5, "gamma": 0.5, "inner_lr": 0.3,
                    "momentum": 0.9, "nesterov": True},
    "psgd": {"lr": 0.1},
    "natural-gradient": {"lr": 0.5, "damping": 1e-2, "cg_iters": 20},
    "saddle-free-newton": {"lr": 1.0, "damping": 0.1, "krylov_dim": 10},
    "polynomial-preconditioned": {"lr": 1.0, "tau": 1, "trace_samples": 2, "refresh_every": 4},
    "dasa": {"lr": 0.1, "init_samples": 2, "alpha": 1e-2},
    "aepg": {"lr": 0.5},
    "aepg-ggn": {"lr": 0.5, "preconditioner": "ggn", "damping": 0.1, "cg_iters": 5},
    "regularized-newton": {"lr": 1.0, "curvature": "ggn", "solver": "cg", "cg_iters": 5},
    "optex": {"lr": 0.5, "parallelism": 4},
    "induced-metric": {"lr": 0.5, "momentum": 0.9},
}
STOCHASTIC = {"entropy-sgd", "psgd", "polynomial-preconditioned", "dasa"}
VARIANTS = {"aepg-ggn": "aepg"}  # benchmark label -> registered name


def make_model(width: int, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(40, width), nn.ReLU(), nn.Linear(width, 10))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5 if p.ndim == 2
                    else torch.zeros(p.shape))
    return model


def build(name: str, model: nn.Module, hyper: dict) -> torch.optim.Optimizer:
    hyper = dict(hyper)
    if name in STOCHASTIC:
        hyper["generator"] = torch.Generator().manual_seed(0)
    return build_optimizer(VARIANTS.get(name, name), model.parameters(), **hyper)


def step_time(step, reps: int = 7, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--budget", type=int, default=150)
    ap.add_argument("--target", type=float, default=1.0)
    ap.add_argument("--methods", default="", help="comma-separated subset of the methods")
    args = ap.parse_args()
    chosen = args.methods.split(",") if args.methods else list(METHODS)
    torch.set_num_threads(1)
    task = build_task("mnist1d")
    x, y, loss_fn = task.x_train[:args.batch], task.y_train[:args.batch], task.loss

    base_model = make_model(args.width)
    sgd = torch.optim.SGD(base_model.parameters(), lr=0.01)

    def plain():
        sgd.zero_grad()
        loss_fn(base_model(x), y).backward()
        sgd.step()

    ref = step_time(plain, reps=21)

    def steps_to_target(name: str, hyper: dict) -> tuple[int | None, float]:
        model = make_model(args.width)
        opt = build(name, model, hyper)
        closure = make_closure(model, loss_fn, x, y)
        for k in range(1, args.budget + 1):
            if name in METHODS:
                opt.step(closure)
            else:
                closure()
                opt.step()
            with torch.no_grad():
                loss = loss_fn(model(x), y).item()
            if loss < args.target:
                return k, loss
        return None, loss

    adamw = {}
    for lr in (3e-3, 1e-2, 3e-2):
        adamw[lr] = steps_to_target("adamw", {"lr": lr, "weight_decay": 0.0})
    best_lr = min(adamw, key=lambda lr: (adamw[lr][0] or 10 ** 9, adamw[lr][1]))
    adamw_steps = adamw[best_lr][0]
    print(f"plain gradient step: {ref * 1e3:.2f} ms (MLP 40-{args.width}-10, batch {args.batch},"
          f" 1 thread); target loss {args.target}, budget {args.budget} steps")
    print(f"AdamW best lr {best_lr:g}: steps to target {adamw_steps} "
          f"(grid: {', '.join(f'{lr:g}->{adamw[lr][0]}' for lr in adamw)})")
    print(f"{'method':26s} {'cost/step (x plain)':>20s} {'steps to target':>16s} "
          f"{'x AdamW steps':>14s} {'x AdamW time':>13s}")
    for name in chosen:
        hyper = METHODS[name]
        model = make_model(args.width)
        opt = build(name, model, hyper)
        closure = make_closure(model, loss_fn, x, y)
        cost = step_time(lambda o=opt, c=closure: o.step(c), reps=5) / ref
        steps, _ = steps_to_target(name, hyper)
        rel = f"{steps / adamw_steps:.2f}" if steps and adamw_steps else "-"
        rel_t = f"{steps * cost / adamw_steps:.2f}" if steps and adamw_steps else "-"
        print(f"{name:26s} {cost:20.1f} {str(steps):>16s} {rel:>14s} {rel_t:>13s}")


if __name__ == "__main__":
    main()
