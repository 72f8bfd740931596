"""Per-step time of trainlab's first-order optimizers on 10M fp32 parameters (CPU).

Each method is timed in the same process as the reference ``torch.optim.AdamW(fused=True)``
(lr 1e-3, weight decay 0.01), in interleaved rounds (reference, ours, po-loop, po-foreach,
reference, ...), so the printed ratios survive a noisy, shared machine; the table shows the
median over rounds of the per-step time (and the min in the JSON). Two layouts: few tensors
(10 x 1M) and many tensors (500 x 20k). Achieved bandwidth counts the minimum traffic of the
update: parameters read+written, the gradient read, every state buffer read+written (4 bytes
each). Beside it, this machine's copy bandwidth measured in the same rounds
(``dst.copy_(src)`` of a 256 MiB float32 buffer, read + write counted, the median over
rounds): an update cannot run faster than its traffic at that rate, so "of copy" (achieved
over copy bandwidth) says how close to the memory floor a method is. "floor" is a method's
traffic over fused AdamW's (28 bytes per parameter): the ratio a memory-bound update reaches
when both run at the same bandwidth. Optimistic-AMSGrad moves 44 bytes per parameter (the
gradient read; the first and second moments, their running maximum and the half-step
iterate read and written; the parameter written, which costs a read too: a cache line is
fetched before it is overwritten), so its floor is 44/28 = 1.57x, above the issue's 1.5x.

For the methods pytorch_optimizer (po) also has, both of its code paths are timed (its
for-loop, ``foreach=False``, and ``foreach=True``, its default on CPU) with the *same
settings* as ours, and "ours/po" is ours over the faster of the two. The settings, per method
(``SETTINGS`` below holds them):

- ademamix: lr 1e-3, betas (0.9, 0.999, 0.9999), alpha 5, no warmups, decoupled weight decay
  0.01 scaled by lr (po: ``weight_decouple=True``; its default is coupled L2).
- diffgrad: lr 1e-3, betas (0.9, 0.999), no weight decay (ours is L2 when non-zero, po's
  default is decoupled, so 0 is the only equal setting). po adds eps before the sqrt(1-b2^t)
  correction, ours after: same cost.
- gravity: lr 0.1, alpha 0.01, beta 0.9 (po counts t from 1, ours from 0: same cost).
- grokfast_adamw: lr 1e-3, EMA alpha 0.98, lamb 2, betas (0.9, 0.98), decoupled weight decay
  0.01 scaled by lr; po with ``normalize_lr=False`` (its default divides lr by 1 + lamb) and
  ``grokfast_after_step=0``. po adds the filtered term into ``p.grad`` in place (ours never
  writes p.grad), so its gradients grow 3x a step; the few steps timed stay finite.

The "(fused)" rows are the same methods with ``fused=True``: one kernel per tensor compiled
by torch.compile (:mod:`trainlab.optim._compiled`); the compilation happens in the warm-up
step, outside the timing.

    python benchmarks/optim_step.py --threads 1 --reps 7 --steps 3 --methods ademamix diffgrad
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from trainlab.optim import build_optimizer

Factory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]
REF_SETTINGS = dict(lr=1e-3, weight_decay=0.01)  # fused AdamW reference

# name -> (our kwargs, pytorch_optimizer class name or None, its kwargs, bytes/param/step)
SETTINGS: dict[str, tuple[dict, str | None, dict, int]] = {
    "ademamix": (dict(lr=1e-3, weight_decay=0.01), "AdEMAMix",
                 dict(lr=1e-3, weight_decay=0.01, weight_decouple=True), 36),
    "diffgrad": (dict(lr=1e-3, weight_decay=0.0), "DiffGrad", dict(lr=1e-3, weight_decay=0.0),
                 36),
    "gravity": (dict(lr=0.1, alpha=0.01, beta=0.9), "Gravity",
                dict(lr=0.1, alpha=0.01, beta=0.9), 20),
    "grokfast-adamw": (dict(lr=1e-3, alpha=0.98, lamb=2.0, betas=(0.9, 0.98),
                            weight_decay=0.01), "GrokFastAdamW",
                       dict(lr=1e-3, grokfast_alpha=0.98, grokfast_lamb=2.0, betas=(0.9, 0.98),
                            weight_decay=0.01, weight_decouple=True, normalize_lr=False), 36),
    "ademamix (fused)": (dict(lr=1e-3, weight_decay=0.01, fused=True), "AdEMAMix",
                         dict(lr=1e-3, weight_decay=0.01, weight_decouple=True), 36),
    "diffgrad (fused)": (dict(lr=1e-3, weight_decay=0.0, fused=True), "DiffGrad",
                         dict(lr=1e-3, weight_decay=0.0), 36),
    "gravity (fused)": (dict(lr=0.1, alpha=0.01, beta=0.9, fused=True), "Gravity",
                        dict(lr=0.1, alpha=0.01, beta=0.9), 20),
    "grokfast-adamw (fused)": (dict(lr=1e-3, alpha=0.98, lamb=2.0, betas=(0.9, 0.98),
                                    weight_decay=0.01, fused=True), "GrokFastAdamW",
                               dict(lr=1e-3, grokfast_alpha=0.98, grokfast_lamb=2.0,
                                    betas=(0.9, 0.98), weight_decay=0.01,
                                    weight_decouple=True, normalize_lr=False), 36),
    "gd (heavy ball)": (dict(lr=1e-3, momentum=0.9), None, {}, 20),
    "gd (heavy ball, fused)": (dict(lr=1e-3, momentum=0.9, fused=True), None, {}, 20),
    "dog": (dict(lr=1.0), None, {}, 16),
    "optimistic-amsgrad": (dict(lr=1e-3), None, {}, 44),
    "optimistic-amsgrad (fused)": (dict(lr=1e-3, fused=True), None, {}, 44),
    "riemannian-adam (eucl.)": (dict(lr=1e-3), None, {}, 28),
    "clipped-sgd": (dict(lr=1e-3), None, {}, 12),
}


def _factories(name: str) -> dict[str, Factory]:
    """The implementations timed for ``name``: ours, and po's loop and foreach paths."""
    ours, po_name, po_kw, _ = SETTINGS[name]
    reg = name.split(" ")[0]
    out: dict[str, Factory] = {"ours": lambda ps: build_optimizer(reg, ps, **ours)}
    if po_name is not None:
        try:
            import pytorch_optimizer as po
        except ImportError:
            return out
        cls = getattr(po, po_name)
        out["po-loop"] = lambda ps: cls(ps, **po_kw, foreach=False)
        out["po-foreach"] = lambda ps: cls(ps, **po_kw, foreach=True)
    return out


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


COPY_ELEMENTS = 64 * 2**20  # float32: 256 MiB, far beyond any cache


class _Copy:
    """A stand-in optimizer whose ``step`` copies a 256 MiB buffer (the copy-bandwidth
    probe, timed in the same rounds as the optimizers)."""

    def __init__(self):
        self.src = torch.ones(COPY_ELEMENTS)
        self.dst = torch.empty_like(self.src)

    def step(self) -> None:
        self.dst.copy_(self.src)


def copy_gbps(seconds: float) -> float:
    """Copy bandwidth (GB/s, read + write) of one :class:`_Copy` step taking ``seconds``."""
    return 2 * 4 * COPY_ELEMENTS / seconds / 1e9


def measure(makers: dict[str, Factory], layout: tuple[int, int], reps: int, steps: int
            ) -> dict[str, list[float]]:
    """Seconds per step of each implementation, of the fused-AdamW reference (key
    ``"ref"``) and of the 256 MiB copy (key ``"copy"``), one entry per interleaved round,
    after one warm-up step each."""
    opts = {"ref": torch.optim.AdamW(_params(layout), fused=True, **REF_SETTINGS),
            "copy": _Copy()}
    for i, (k, make) in enumerate(makers.items()):
        opts[k] = make(_params(layout, seed=1 + i))
    for opt in opts.values():
        opt.step()  # warm-up (and, for the fused paths, compilation)
        opt.step()
    times: dict[str, list[float]] = {k: [] for k in opts}
    for _ in range(reps):
        for k, opt in opts.items():
            times[k].append(_time_steps(opt, steps))
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--methods", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--layouts", nargs="*", default=["few", "many"], choices=["few", "many"])
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    layouts = {"few": ("few (10 x 1M)", (10, 1_000_000)),
               "many": ("many (500 x 20k)", (500, 20_000))}
    load_before = os.getloadavg()
    rows = []
    for key in args.layouts:
        lname, layout = layouts[key]
        n = layout[0] * layout[1]
        for name in args.methods:
            bytes_per = SETTINGS[name][3]
            times = measure(_factories(name), layout, args.reps, args.steps)
            med = {k: statistics.median(v) for k, v in times.items()}
            t, t_ref = med["ours"], med["ref"]
            copy = copy_gbps(med["copy"])
            row = {"layout": lname, "method": name, "ms": 1e3 * t, "ref_ms": 1e3 * t_ref,
                   "ms_min": 1e3 * min(times["ours"]), "ref_ms_min": 1e3 * min(times["ref"]),
                   "ratio_to_fused_adamw": t / t_ref, "GB/s": bytes_per * n / t / 1e9,
                   "ref_GB/s": 28 * n / t_ref / 1e9, "copy_GB/s": copy,
                   "floor": bytes_per / 28,
                   "load": os.getloadavg()[0]}
            text = (f"{lname:17s} {name:24s} {1e3 * t:7.2f} ms  x{t / t_ref:5.2f} fused-AdamW "
                    f"(floor x{bytes_per / 28:4.2f}) "
                    f"({1e3 * t_ref:6.2f} ms)  {row['GB/s']:5.1f} GB/s (AdamW "
                    f"{row['ref_GB/s']:4.1f}, copy {copy:4.1f}, load {row['load']:4.1f})")
            po_keys = [k for k in ("po-loop", "po-foreach") if k in med]
            if po_keys:
                for k in po_keys:
                    row[f"{k}_ms"] = 1e3 * med[k]
                best = min(med[k] for k in po_keys)
                row["ours_over_po"] = t / best
                text += (f"  po loop/foreach {1e3 * med['po-loop']:7.2f}/"
                         f"{1e3 * med['po-foreach']:7.2f} ms  ours/po {t / best:.2f}")
            rows.append(row)
            print(text, flush=True)
    env = {"torch": torch.__version__, "threads": args.threads, "cpu": platform.processor(),
           "machine": platform.machine(), "reps": args.reps, "steps": args.steps,
           "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    print(f"load average before {load_before[0]:.2f}, after {env['loadavg_after'][0]:.2f} "
          f"({os.cpu_count()} cores, {args.threads} thread(s))")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"environment": env, "settings": {k: SETTINGS[k] for k in args.methods},
                       "rows": rows}, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
