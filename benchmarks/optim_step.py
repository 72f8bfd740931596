"""Per-step time of trainlab's first-order optimizers on 10M fp32 parameters (CPU).

Each method is timed in the same process as the reference ``torch.optim.AdamW(fused=True)``,
in interleaved rounds (reference, method, reference, ...), so the printed ratios survive a
noisy, shared machine. Two layouts: few tensors (10 x 1M) and many tensors (500 x 20k).
Achieved bandwidth counts the minimum traffic of the update: parameters read+written, the
gradient read, every state buffer read+written (4 bytes each). For methods that
pytorch_optimizer also has, its implementation is timed too and "ours/po" printed.

    python benchmarks/optim_step.py --reps 3 --steps 3 --json results.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch

from trainlab.optim import build_optimizer

# name -> (factory(params) -> optimizer, bytes per parameter per step)
Factory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]


def _ours() -> dict[str, tuple[Factory, int]]:
    b = lambda name, **kw: (lambda ps: build_optimizer(name, ps, **kw))  # noqa: E731
    return {
        "ademamix": (b("ademamix", lr=1e-3), 36),
        "diffgrad": (b("diffgrad", lr=1e-3), 36),
        "gravity": (b("gravity", lr=0.1), 20),
        "gd (heavy ball)": (b("gd", lr=1e-3, momentum=0.9), 20),
        "dog": (b("dog", lr=1.0), 16),
        "optimistic_amsgrad": (b("optimistic_amsgrad", lr=1e-3), 44),
        "riemannian_adam (eucl.)": (b("riemannian_adam", lr=1e-3), 28),
        "grokfast_adamw": (b("grokfast_adamw", lr=1e-3, weight_decay=0.0), 36),  # as po default
        "clipped_sgd": (b("clipped_sgd", lr=1e-3), 12),
    }


def _theirs() -> dict[str, Factory]:
    try:
        import pytorch_optimizer as po
    except ImportError:
        return {}
    return {
        "ademamix": lambda ps: po.AdEMAMix(ps, lr=1e-3, foreach=False),
        "diffgrad": lambda ps: po.DiffGrad(ps, lr=1e-3, foreach=False),
        "gravity": lambda ps: po.Gravity(ps, lr=0.1, foreach=False),
        "grokfast_adamw": lambda ps: po.GrokFastAdamW(ps, lr=1e-3, foreach=False),
    }


def _params(layout: tuple[int, int], seed: int = 0) -> list[torch.Tensor]:
    n_tensors, size = layout
    g = torch.Generator().manual_seed(seed)
    ps = []
    for _ in range(n_tensors):
        p = torch.randn(size, generator=g).requires_grad_(True)
        p.grad = torch.randn(size, generator=g) * 1e-2
        ps.append(p)
    return ps


def _time_steps(opt: torch.optim.Optimizer, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step()
    return (time.perf_counter() - t0) / steps


def measure(make: Factory, ref: torch.optim.Optimizer, layout, reps: int, steps: int
            ) -> tuple[float, float]:
    """(min seconds per step of ``make``, min seconds per step of ``ref``) over interleaved
    rounds, after one warm-up step each."""
    opt = make(_params(layout, seed=1))
    opt.step()
    ours, refs = [], []
    for _ in range(reps):
        refs.append(_time_steps(ref, steps))
        ours.append(_time_steps(opt, steps))
    del opt
    return min(ours), min(refs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    layouts = {"few (10 x 1M)": (10, 1_000_000), "many (500 x 20k)": (500, 20_000)}
    ours, theirs = _ours(), _theirs()
    rows = []
    for lname, layout in layouts.items():
        n = layout[0] * layout[1]
        ref = torch.optim.AdamW(_params(layout), lr=1e-3, fused=True)
        ref.step()
        ref_times = []
        for name, (make, bytes_per) in ours.items():
            t, t_ref = measure(make, ref, layout, args.reps, args.steps)
            ref_times.append(t_ref)
            row = {"layout": lname, "method": name, "ms": 1e3 * t, "ref_ms": 1e3 * t_ref,
                   "ratio_to_fused_adamw": t / t_ref, "GB/s": bytes_per * n / t / 1e9}
            if name in theirs:
                t_po, _ = measure(theirs[name], ref, layout, args.reps, args.steps)
                row["po_ms"] = 1e3 * t_po
                row["ours_over_po"] = t / t_po
            rows.append(row)
            print(f"{lname:18s} {name:24s} {1e3 * t:8.2f} ms  x{t / t_ref:5.2f} fused-AdamW "
                  f"({1e3 * t_ref:6.2f} ms)  {row['GB/s']:6.1f} GB/s"
                  + (f"  ours/po {row['ours_over_po']:.2f}" if "ours_over_po" in row else ""),
                  flush=True)
        print(f"{lname:18s} {'fused AdamW (ref)':24s} {1e3 * statistics.median(ref_times):8.2f} "
              f"ms  {28 * n / statistics.median(ref_times) / 1e9:6.1f} GB/s", flush=True)
        del ref
    env = {"torch": torch.__version__, "threads": args.threads, "cpu": platform.processor(),
           "machine": platform.machine(), "reps": args.reps, "steps": args.steps}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"environment": env, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
