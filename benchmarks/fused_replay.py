"""Per-step time of a ``fused=True`` optimizer with its kernels replayed (the default on the
CPU) and through the precompiled function (the path before the replay), in the same process
as ``torch.optim.AdamW(fused=True)``, in interleaved rounds (medians).

Both paths run the same compiled kernels (:mod:`trainlab.optim._kernel_replay`); what differs
is the cost around them (the precompiled function's Python wrappers and flat views, against
one C call per group of tensors). The replay is switched off for the other path with the
update's ``replay`` flag, so both use one optimizer and one set of tensors. The compile cache
(``TRAINLAB_COMPILE_CACHE``) should be warm: a cold one compiles in the warm-up step.

    python benchmarks/fused_replay.py --methods ademamix diffgrad optimistic-amsgrad
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import time

import torch

from trainlab.optim import build_optimizer

MODULES = {"ademamix": "trainlab.optim.ademamix", "diffgrad": "trainlab.optim.diffgrad",
           "optimistic-amsgrad": "trainlab.optim.optimistic_amsgrad",
           "gravity": "trainlab.optim.gravity", "gd": "trainlab.optim.gd"}
SETTINGS = {"ademamix": dict(lr=1e-3, weight_decay=0.01), "diffgrad": dict(lr=1e-3),
            "optimistic-amsgrad": dict(lr=1e-3), "gravity": dict(lr=0.1),
            "gd": dict(lr=1e-3, momentum=0.9)}


def _params(n: int, size: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ps = [torch.randn(size, generator=g).requires_grad_(True) for _ in range(n)]
    for p in ps:
        p.grad = torch.randn(size, generator=g) * 1e-2
    return ps


def _seconds(step, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def measure(method: str, n: int, size: int, reps: int, steps: int) -> dict[str, float]:
    """Median seconds per step of fused AdamW, of ``method`` replayed and of ``method``
    through the precompiled function."""
    update = importlib.import_module(MODULES[method])._FUSED
    ours = build_optimizer(method, _params(n, size, 1), fused=True, **SETTINGS[method])
    ref = torch.optim.AdamW(_params(n, size, 2), fused=True, lr=1e-3, weight_decay=0.01)

    def precompiled() -> None:
        update.replay = False
        try:
            ours.step()
        finally:
            update.replay = True

    for step in (ref.step, ours.step, precompiled):  # warm-up (loads, compiles)
        step()
        step()
    times: dict[str, list[float]] = {"adamw": [], "replay": [], "precompiled": []}
    for _ in range(reps):
        times["adamw"].append(_seconds(ref.step, steps))
        times["replay"].append(_seconds(ours.step, steps))
        times["precompiled"].append(_seconds(precompiled, steps))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["ademamix", "diffgrad",
                                                     "optimistic-amsgrad"],
                    choices=list(MODULES))
    ap.add_argument("--tensors", type=int, default=500)
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for method in args.methods:
        m = measure(method, args.tensors, args.size, args.reps, args.steps)
        row = {"method": method, "layout": f"{args.tensors} x {args.size}",
               **{f"{k}_ms": 1e3 * v for k, v in m.items()},
               "replay_ratio": m["replay"] / m["adamw"],
               "precompiled_ratio": m["precompiled"] / m["adamw"], "load": os.getloadavg()[0]}
        rows.append(row)
        print(f"{method:18s} {row['layout']}: fused AdamW {row['adamw_ms']:6.2f} ms, replay "
              f"{row['replay_ms']:6.2f} ms (x{row['replay_ratio']:.2f}), precompiled "
              f"{row['precompiled_ms']:6.2f} ms (x{row['precompiled_ratio']:.2f}); load "
              f"{row['load']:.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"torch": torch.__version__, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
