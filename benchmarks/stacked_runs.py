"""Stacked runs (trainlab.train.stacked) against the same runs one at a time, in one process.

R runs of the spectral-plasticity MLP (32 -> 128 -> 128 -> 10 ReLU, batch 64, Adam, each run
its own data): the CPU (or wall) time of one training step of all R runs (forward, backward,
Adam step), done three ways:
  - alone:   one model and one optimizer per run, one run after the other
  - stacked: StackedSequential (one baddbmm per Linear for all runs) and one Adam
  - vmap:    torch.func.vmap over functional_call of the same stacked parameters, one Adam
Each figure is the median over ``--reps`` alternating repetitions of ``--steps`` steps.

Usage: python benchmarks/stacked_runs.py [--runs 4] [--steps 200] [--reps 5] [--threads 1]
       [--clock process|wall]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.train.stacked import StackedSequential, stack_parameters

CLOCK = {"wall": time.perf_counter, "process": time.process_time}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=sorted(CLOCK), default="process")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clock, runs = CLOCK[args.clock], args.runs
    g = torch.Generator().manual_seed(0)
    models = []
    for _ in range(runs):
        model = build_model("mlp", (32,), 10, depth=2, width=128)
        init_apply(model, "kaiming-normal", generator=g)
        models.append(model)
    x = torch.randn(runs, 64, 32, generator=g)
    y = torch.randint(0, 10, (runs, 64), generator=g)

    alone_opts = [build_optimizer("adam", m.parameters(), lr=1e-3) for m in models]
    net = StackedSequential(models[0], stack_parameters(models))
    stacked_opt = build_optimizer("adam", net.params.values(), lr=1e-3)
    vparams = stack_parameters(models)
    vmap_opt = build_optimizer("adam", vparams.values(), lr=1e-3)
    skeleton = copy.deepcopy(models[0]).to("meta")
    forward = vmap(lambda p, xb: functional_call(skeleton, p, (xb,)))

    def summed(out: torch.Tensor) -> torch.Tensor:  # the sum over runs of each run's mean
        return F.cross_entropy(out.reshape(-1, 10), y.reshape(-1),
                               reduction="none").view(runs, -1).mean(1).sum()

    def alone() -> None:
        for r, (model, opt) in enumerate(zip(models, alone_opts, strict=True)):
            opt.zero_grad()
            F.cross_entropy(model(x[r]), y[r]).backward()
            opt.step()

    def stacked() -> None:
        stacked_opt.zero_grad()
        summed(net(x)).backward()
        stacked_opt.step()

    def vmapped() -> None:
        vmap_opt.zero_grad()
        summed(forward(vparams, x)).backward()
        vmap_opt.step()

    ways = {"alone": alone, "stacked": stacked, "vmap": vmapped}
    times: dict[str, list[float]] = {k: [] for k in ways}
    for fn in ways.values():  # warm-up
        for _ in range(10):
            fn()
    for _ in range(args.reps):
        for name, fn in ways.items():
            start = clock()
            for _ in range(args.steps):
                fn()
            times[name].append((clock() - start) / args.steps * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{runs} runs, {args.clock} ms per step of all runs (median of {args.reps}): "
          + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    print(f"alone / stacked {med['alone'] / med['stacked']:.2f}, "
          f"alone / vmap {med['alone'] / med['vmap']:.2f}")


if __name__ == "__main__":
    main()
