"""In-loop overhead of the ``economy`` probe preset (loss, gradient norms, distance from
init, update size, gradient noise/GSNR) over an untracked training loop.

An MLP (40-128-128-10) trained with Adam on MNIST-1D, batch 128. The reference is the same
plain torch loop without probes, timed in the same process; each configuration measures the
probes at every step, every 16 and every 256 steps. The tracked loop is the untracked one
plus a :class:`trainlab.train.Monitor` (no store): ``mon.step(loss, (x, y))`` after the
backward pass and before the update, so the time includes everything a monitor does (probe
hooks on the model, contexts, the due probes, one conversion to floats per step, parameter
snapshots, the history). Prints the median time per step and the median over rounds of the
ratio to the untracked loop of the same round (Cockpit's published CPU figure for its
economy preset on an MNIST MLP at every step is about 63x; see notes/diagnostics.md).
``--per-probe`` adds one configuration per probe of the preset, measured alone at every step.
``benchmarks/economy_profile.py`` splits one economy step into its parts.

Measured (docs/performance.md, sessions speedeco2 and econ, 2026-12-06, 1 thread, process
clock, load 5-9 on 2 shared cores): economy@1 2.3x-2.5x at the default 23k parameters,
2.5x at 40k (depth 3, width 128), 1.9x-2.1x at 0.55M (width 512) and 1.6x-2.1x at 8.5M
(width 2048), the spread at 8.5M set mostly by how fast the untracked loop ran in each
round; economy@16 1.1x-1.2x. Session econ2 (2026-12-07, load 8-10, run alternately with
the code before it): economy@1 2.09x-2.19x at 23k (before 2.12x-2.53x), 2.00x-2.02x at
40k (before 2.12x-2.19x), 2.16x-2.27x at 0.55M and 1.93x-2.05x at 8.5M (no change there
beyond the noise); economy@16 1.06x-1.20x (no change beyond the noise). Session eco1
(2026-12-07, load 5-7, ``--eager``: the one-pass C sums of ``trainlab.probes.fused`` against
the eager path in the same process): economy@1 1.88x-1.99x (eager 2.04x-2.16x) at 23k,
1.83x-1.88x (2.02x-2.12x) at 40k, 1.75x (2.20x-2.23x) at 0.55M, 1.65x-1.82x (1.87x-1.98x)
at 8.5M; economy@16 1.02x-1.31x, within the spread of the eager rows. Session eco16
(2026-12-07, load 3.5-7, alternately with the code before it): economy@16 1.10x-1.17x at
23k (before 1.12x-1.18x), 1.08x-1.10x at 40k (1.13x-1.16x), 1.09x at 0.55M (1.08x-1.21x);
the monitor's own time at the 14 steps of 16 where no probe is due went from 33 to 15 us
(``economy_profile.py --every 16``), which the per-round spread here (0.15-0.4) does not
resolve. With ``--steps 16`` at 8.5M parameters, economy@16 and economy@256 both hold one
due step, the run's first: use 32 steps or more for the steady cycle. Each ratio comes
from one process; compare two versions of the code only in runs at about the same time.
Session eco3 (2026-12-07, load 3-4, the norm pass writing the parameter snapshot, against
the code before it one process after the other; ``--steps 32`` at 8.5M): economy@1 1.42x-1.45x
at 8.5M (before 1.43x-1.50x), 1.53x-1.65x at 0.55M (1.65x), 1.88x at 23k (1.91x), the
change within the rounds' spread (4-5 ms of a 90-107 ms step at 8.5M by
``economy_profile.py``).
Session noise (2026-12-07, load 0.6-2.2, grad-noise on a plan kept across steps, against
the code before it one process after the other): economy@1 1.76x at 23k (before
1.89x-2.00x), 1.77x at 40k (1.90x), 1.56x-1.61x at 0.55M (1.61x-1.68x), 1.47x at 8.5M
(1.50x); grad-noise@1 alone 1.45x-1.53x at 23k (1.64x-1.72x).
Session plan (2026-12-07, load 1.3-2.5, a kept plan for the norm pass and the monitor,
against the code before it one process after the other, four pairs per size): economy@1
1.82x-2.01x at 23k (before 1.91x-2.07x; medians 1.88x and 2.00x), 1.78x-1.88x at 40k
(1.88x-1.91x), 1.72x-1.75x at 0.55M (1.67x-1.81x, no change beyond the noise); economy@16
1.06x-1.14x at 23k (1.00x-1.15x, also over 15 rounds per run: 1.12x, 1.14x against 1.14x,
1.12x), within the rounds' spread; ``--per-probe`` rotation@1 1.18x-1.37x (1.26x-1.36x).
Session noise3 (2026-12-07 09:00 UTC, load 2.1-3.1, grad-noise's Python and the capture's
hooks leaner, against the code before it one process after the other, two pairs per size):
economy@1 1.68x-1.69x at 23k (before 1.73x-1.74x), 1.64x at 40k (1.67x-1.68x); economy@16
1.09x (1.10x-1.11x) and 1.08x-1.10x (1.07x-1.08x).
``--eager`` adds the preset at every step and every 16 steps with those sums off
(``TRAINLAB_FUSED=0``), interleaved in the same rounds.

Example:
    python benchmarks/probe_overhead.py --steps 512 --repeats 3 --clock process
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from trainlab.models import build_model
from trainlab.probes import PRESETS, build_probes, fused
from trainlab.tasks import build_task
from trainlab.train import Monitor


def make(seed: int, task, width: int = 128, depth: int = 2):
    torch.manual_seed(seed)
    model = build_model("mlp", task.input_shape, task.num_outputs, depth=depth, width=width)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def run(task, steps: int, batch: int, spec: str | None, every: int = 1, use_fused: bool = True,
        clock=time.perf_counter, width: int = 128, depth: int = 2) -> float:
    """Seconds per step of ``steps`` training steps, probes ``spec`` due every ``every``
    (an MLP 40-``width``-...-10 with ``depth`` hidden layers), with the one-pass C sums
    (:mod:`trainlab.probes.fused`) on or off."""
    fused.set_enabled(use_fused)
    model, opt = make(0, task, width, depth)
    g = torch.Generator().manual_seed(0)
    mon = (Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                   probes=build_probes(spec, every=every), seed=1) if spec else None)
    n = len(task.x_train)
    start = clock()
    try:
        for _ in range(steps):
            idx = torch.randint(0, n, (batch,), generator=g)
            x, y = task.x_train[idx], task.y_train[idx]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            if mon is not None:
                mon.step(loss, (x, y))  # after backward, before the update
            opt.step()
        elapsed = clock() - start
    finally:
        if mon is not None:
            mon.finish()
    return elapsed / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width", type=int, default=128,
                        help="hidden width of the MLP (depth 2, width 128: 23k parameters)")
    parser.add_argument("--depth", type=int, default=2,
                        help="hidden layers (depth 3 at widths 128 / 512 / 2048: the 41k / "
                             "0.55M / 8.5M parameters of issue 18's scale figures)")
    parser.add_argument("--clock", choices=("wall", "process"), default="wall",
                        help="process: CPU time of this process (robust on a machine shared "
                             "with other jobs; equal to wall time on an idle one, 1 thread)")
    parser.add_argument("--preset", default="economy", help="probe preset or spec to time")
    parser.add_argument("--per-probe", action="store_true",
                        help="also time each probe of the preset alone, at every step")
    parser.add_argument("--eager", action="store_true",
                        help="also time the preset at every step and every 16 with the one-pass "
                             "C sums off (trainlab.probes.fused), interleaved in the same rounds")
    parser.add_argument("--json", type=str, default="", help="write results to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = build_task("mnist1d")
    name = args.preset
    configs: dict[str, tuple[str | None, int, bool]] = {"untracked": (None, 1, True)}
    configs.update({f"{name}@{e}": (name, e, True) for e in (1, 16, 256)})
    if args.eager:
        configs.update({f"{name}@{e} eager": (name, e, False) for e in (1, 16)})
    if args.per_probe:
        configs.update({f"{p}@1": (p, 1, True) for p in PRESETS.get(name, name.split(","))})
    clock = time.process_time if args.clock == "process" else time.perf_counter
    # warm-up (allocator, first-call overheads)
    run(task, 32, args.batch, name, width=args.width, depth=args.depth)
    times: dict[str, list[float]] = {k: [] for k in configs}
    ratios: dict[str, list[float]] = {k: [] for k in configs}
    names = list(configs)
    for r in range(args.repeats):
        # interleaved, in a rotated order, and each ratio against the untracked run of the
        # same round: load that drifts (other processes) hits numerator and denominator alike
        order = names[r % len(names):] + names[:r % len(names)]
        round_t = {c: run(task, args.steps, args.batch, *configs[c], clock=clock,
                          width=args.width, depth=args.depth) for c in order}
        for name, t in round_t.items():
            times[name].append(t)
            ratios[name].append(t / round_t["untracked"])
    params = sum(p.numel() for p in make(0, task, args.width, args.depth)[0].parameters())
    print(f"torch {torch.__version__}, threads {args.threads}, {platform.processor() or 'cpu'}, "
          f"{args.steps} steps x {args.repeats} repeats, batch {args.batch}, {args.clock} clock, "
          f"MLP width {args.width} depth {args.depth} ({params} parameters), load average "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    results = {}
    for c, ts in times.items():
        med, ratio = statistics.median(ts), statistics.median(ratios[c])
        lo, hi = min(ratios[c]), max(ratios[c])
        results[c] = {"ms_per_step": 1e3 * med, "ratio": ratio, "ratio_min": lo,
                      "ratio_max": hi}
        print(f"{c:>22}: {1e3 * med:7.3f} ms/step  ratio {ratio:5.2f}x  "
              f"(per-round ratios {lo:.2f}-{hi:.2f})")
    if args.json:
        env = {"torch": torch.__version__, "threads": args.threads, "clock": args.clock,
               "width": args.width, "depth": args.depth, "params": params,
               "cpu": platform.processor(), "python": platform.python_version()}
        with open(args.json, "w") as f:
            json.dump({"environment": env, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
