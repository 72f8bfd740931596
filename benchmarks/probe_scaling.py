"""How the in-loop probe overhead and the Lanczos sharpness cost grow with the model.

MLPs (40-w-w-10) on MNIST-1D trained with Adam; for each width the untracked loop and the
same loop under the ``economy`` preset at every step are timed in the same process
(interleaved rounds, medians of per-round ratios, one thread, process clock), and one
20-iteration Lanczos sharpness estimate (double-backward HVPs, retained graph) is timed
against one gradient of the same batch. A second sweep varies the batch at a fixed width.
Prints, for each size, the parameter count, the ratio economy / untracked, the probes' extra
milliseconds per step and the Lanczos time in gradients, then the log-log slopes of the
extra time and the step time against the parameter count (a slope above the step's own
slope would mean the probes grow super-linearly relative to training), and writes a log-log
figure (``--png``) and the numbers (``--json``).

Example:
    python benchmarks/probe_scaling.py --png docs/performance_scaling.png --json /tmp/s.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from probe_overhead import run  # the timed loop, shared with the economy benchmark
from trainlab.curvature import HessianOperator, lanczos
from trainlab.models import build_model
from trainlab.tasks import build_task


def _model(task, width: int):
    torch.manual_seed(0)
    return build_model("mlp", task.input_shape, task.num_outputs, depth=2, width=width)


def _loop(task, width: int, batch: int, steps: int, probes: bool) -> float:
    return run(task, steps, batch, "economy" if probes else None, clock=time.process_time,
               width=width)


def _lanczos_in_gradients(task, width: int, batch: int, iters: int = 20) -> float:
    model = _model(task, width)
    x, y = task.x_train[:batch], task.y_train[:batch]
    start = time.process_time()
    for _ in range(3):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
    grad = (time.process_time() - start) / 3
    start = time.process_time()
    op = HessianOperator(model, F.cross_entropy, (x, y), method="double-backward",
                         retain_graph=True)
    # a tolerance no run meets, so every run takes exactly `iters` products
    lanczos(op, k=1, max_iter=iters, tol=1e-300, generator=torch.Generator().manual_seed(0))
    return (time.process_time() - start) / grad


def measure(task, width: int, batch: int, steps: int, rounds: int) -> dict:
    _loop(task, width, batch, 4, True)  # warm-up
    plain, tracked, ratios = [], [], []
    for r in range(rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        t = {p: _loop(task, width, batch, steps, p) for p in order}
        plain.append(t[False])
        tracked.append(t[True])
        ratios.append(t[True] / t[False])
    params = sum(p.numel() for p in _model(task, width).parameters())
    return {"width": width, "batch": batch, "params": params,
            "step_ms": 1e3 * statistics.median(plain),
            "extra_ms": 1e3 * (statistics.median(tracked) - statistics.median(plain)),
            "ratio": statistics.median(ratios),
            "lanczos_in_gradients": _lanczos_in_gradients(task, width, batch)}


def slope(xs, ys) -> float:
    """Least-squares slope of log y on log x."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 724, 1448, 3000])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 128, 512])
    ap.add_argument("--batch-width", type=int, default=724)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--png", default="")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = build_task("mnist1d")
    by_width = [measure(task, w, 128, args.steps, args.rounds) for w in args.widths]
    by_batch = [measure(task, args.batch_width, b, args.steps, args.rounds)
                for b in args.batches]
    print(f"torch {torch.__version__}, 1 thread, process clock, {args.steps} steps x "
          f"{args.rounds} rounds; economy preset at every step")
    print(f"{'width':>6} {'batch':>6} {'params':>10} {'step ms':>9} {'extra ms':>9} "
          f"{'ratio':>6} {'Lanczos(20) / grad':>19}")
    for r in by_width + by_batch:
        print(f"{r['width']:>6} {r['batch']:>6} {r['params']:>10} {r['step_ms']:>9.2f} "
              f"{r['extra_ms']:>9.2f} {r['ratio']:>6.2f} {r['lanczos_in_gradients']:>19.1f}")
    p = [r["params"] for r in by_width]
    slopes = {"step_ms_vs_params": slope(p, [r["step_ms"] for r in by_width]),
              "extra_ms_vs_params": slope(p, [max(r["extra_ms"], 1e-6) for r in by_width]),
              "lanczos_vs_params": slope(p, [r["lanczos_in_gradients"] * r["step_ms"]
                                             for r in by_width]),
              "extra_ms_vs_batch": slope([r["batch"] for r in by_batch],
                                         [max(r["extra_ms"], 1e-6) for r in by_batch])}
    for k, v in slopes.items():
        print(f"log-log slope {k}: {v:.2f}")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        axes[0].loglog(p, [r["step_ms"] for r in by_width], "o-", label="untracked step")
        axes[0].loglog(p, [max(r["extra_ms"], 1e-6) for r in by_width], "s-",
                       label="economy@1 extra")
        axes[0].loglog(p, [r["lanczos_in_gradients"] * r["step_ms"] for r in by_width], "^-",
                       label="Lanczos (20 HVPs)")
        axes[0].set(xlabel="parameters (batch 128)", ylabel="ms (process time)")
        axes[0].legend(fontsize=7)
        b = [r["batch"] for r in by_batch]
        axes[1].loglog(b, [r["step_ms"] for r in by_batch], "o-", label="untracked step")
        axes[1].loglog(b, [max(r["extra_ms"], 1e-6) for r in by_batch], "s-",
                       label="economy@1 extra")
        axes[1].set(xlabel=f"batch (width {args.batch_width})", ylabel="ms")
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"by_width": by_width, "by_batch": by_batch, "slopes": slopes}, f,
                      indent=2)


if __name__ == "__main__":
    main()
