"""Where one ``economy`` step's time goes: each probe's measurement, the monitor's parameter
snapshot and the rest of ``Monitor.step``, beside the training step's forward + backward and
Adam update, in the loop of ``probe_overhead.py`` (MLP on MNIST-1D, batch 128, one thread).

Each part is timed with the process clock at every step after two untimed ones (the
probes' buffers allocated), and the median and minimum over the steps are printed. The
probes share the step's parameter norms (``grad-norm``, measured first, computes them for
``rotation`` and ``update-ratio``). Run the script on two versions of the code at about the
same time to compare them: the machine's load moves every part by tens of percent.

Session econ (2026-12-06 23:10 UTC, load 5-6 on 2 shared cores, ms per step, medians of 8
steps, two runs each, before = commit ccd01a4): width 2048 depth 3 (8.5M parameters):
grad-noise 52-56 (before 63-66; its two products d^2 a^2 of the wide layers about 22),
grad-norm (the shared norms) 30 (29), snapshot 6 (6), all of ``Monitor.step`` 90-94
(99-102), forward + backward 63-73 (62-65: one run paid 4,000 page faults a step there).
Session econ2 (2026-12-07 01:23 UTC, load 8, two runs each, before = commit aac711a),
width 128 depth 2 (23k parameters), 400 steps: grad-noise 0.46-0.50 ms (0.55-0.58),
grad-norm 0.22-0.23 (0.24), rotation 0.06 (0.09), update-ratio 0.02 (0.03), all of
``Monitor.step`` 0.99-1.05 (1.17-1.20).

Session eco1 (2026-12-07 03:48 UTC, load 4-7, the one-pass C sums against ``--eager`` run
one after the other): width 128 depth 2: grad-norm 0.15-0.16 ms (eager 0.24-0.26),
grad-noise 0.44-0.46 (0.52-0.59), all of ``Monitor.step`` 0.90-0.95 (1.09-1.20); width 512
depth 3: 0.84 (2.25), 3.1 (5.3), 5.0 (8.7); width 2048 depth 3: 11.8 (33.7), 32.5 (59.4),
52 (100).

``--count-ops`` also counts the aten calls of one ``Monitor.step`` (dispatched by the Python
code, and with the ones they make inside): at width 128 depth 2, 113 / 440 at commit aac711a,
88 / 299 after session econ2, 45 / 133 with the C sums of session eco1 (``--eager``: 89 /
300). ``--eager`` turns those sums off (``TRAINLAB_FUSED=0``).

Example:
    python benchmarks/economy_profile.py --width 2048 --depth 3 --steps 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict

import torch
import torch.nn.functional as F

from probe_overhead import make  # the benchmark's model and optimizer
from trainlab.probes import build_probes, fused
from trainlab.tasks import build_task
from trainlab.train import Monitor


def profile(width: int, depth: int, steps: int, batch: int, spec: str
            ) -> dict[str, list[float]]:
    """Seconds (process clock) per part and step, over ``steps`` timed steps."""
    task = build_task("mnist1d")
    model, opt = make(0, task, width, depth)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes(spec, every=1), seed=1)
    times: dict[str, list[float]] = defaultdict(list)
    clock = time.process_time
    measure, snapshot = mon._measure, mon._snapshot

    def timed_measure(probe, ctx):
        start = clock()
        try:
            return measure(probe, ctx)
        finally:
            times[probe.name].append(clock() - start)

    def timed_snapshot(params):
        start = clock()
        try:
            return snapshot(params)
        finally:
            times["snapshot"].append(clock() - start)

    mon._measure, mon._snapshot = timed_measure, timed_snapshot
    g = torch.Generator().manual_seed(0)
    n = len(task.x_train)
    try:
        for k in range(steps + 2):
            idx = torch.randint(0, n, (batch,), generator=g)
            x, y = task.x_train[idx], task.y_train[idx]
            t0 = clock()
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            t1 = clock()
            mon.step(loss, (x, y))
            t2 = clock()
            opt.step()
            t3 = clock()
            if k < 2:  # untimed: the buffers of the probes and the optimizer allocated
                times.clear()
                continue
            times["forward + backward"].append(t1 - t0)
            times["Monitor.step (all)"].append(t2 - t1)
            times["Adam step"].append(t3 - t2)
    finally:
        mon.finish()
    return times


def count_ops(width: int, depth: int, batch: int, spec: str) -> tuple[int, int]:
    """Aten calls in one ``Monitor.step`` (after 5 steps): those the Python code dispatches
    (a ``TorchDispatchMode``) and all of them with the ones they make inside
    (``torch.profiler`` events within the step)."""
    from torch.profiler import ProfilerActivity, record_function
    from torch.profiler import profile as torch_profile
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.calls += 1
            return func(*args, **(kwargs or {}))

    task = build_task("mnist1d")
    model, opt = make(0, task, width, depth)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes(spec, every=1), seed=1)
    x, y = task.x_train[:batch], task.y_train[:batch]
    nested = 0
    try:
        for k in range(7):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            if k == 5:
                with Count():
                    mon.step(loss, (x, y))
            elif k == 6:
                with (torch_profile(activities=[ProfilerActivity.CPU]) as prof,
                      record_function("Monitor.step")):
                    mon.step(loss, (x, y))
                step = next(e for e in prof.events() if e.name == "Monitor.step")
                nested = sum(1 for e in prof.events() if e.name != "Monitor.step"
                             and step.time_range.start <= e.time_range.start
                             and e.time_range.end <= step.time_range.end)
            else:
                mon.step(loss, (x, y))
            opt.step()
    finally:
        mon.finish()
    return Count.calls, nested


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--preset", default="economy")
    ap.add_argument("--count-ops", action="store_true",
                    help="also count the aten calls of one Monitor.step")
    ap.add_argument("--eager", action="store_true",
                    help="the one-pass C sums (trainlab.probes.fused) off")
    args = ap.parse_args()
    torch.set_num_threads(1)
    fused.set_enabled(not args.eager)
    if args.count_ops:
        top, nested = count_ops(args.width, args.depth, args.batch, args.preset)
        print(f"aten calls in one Monitor.step: {top} dispatched, {nested} with nested")
    times = profile(args.width, args.depth, args.steps, args.batch, args.preset)
    print(f"torch {torch.__version__}, 1 thread, process clock, MLP width {args.width} depth "
          f"{args.depth}, batch {args.batch}, {args.steps} steps, "
          f"{'eager' if args.eager else 'fused'} sums, load average "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for part, ts in times.items():
        print(f"{part:>20}: median {1e3 * statistics.median(ts):8.3f} ms  "
              f"min {1e3 * min(ts):8.3f} ms")


if __name__ == "__main__":
    main()
