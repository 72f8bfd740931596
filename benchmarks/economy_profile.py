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

Session eco3 (2026-12-07 04:40 UTC, load 3, the norm pass writing the parameter snapshot,
before = commit 583988f, two runs each, ms): width 2048 depth 3: snapshot 0.03 (before
5.5-5.8), grad-norm 11.1-11.8 (10.4-11.0), all of ``Monitor.step`` 40.4-41.3 (44.6-46.6);
width 512 depth 3: snapshot 0.01 (0.20), grad-norm 0.67-0.68 (0.54-0.55), all 2.77-2.86
(2.93-2.97).

Session noise (2026-12-07 06:10 UTC, load 0.3-0.8, grad-noise on a plan kept across steps,
before = commit 424616b, two runs each, ms): grad-noise 0.21-0.22 (before 0.34-0.42) at
width 128 depth 2, 0.29 (0.51) at depth 3, 1.87-1.91 (2.27-2.49) at width 512 depth 3,
28.1-29.6 (30.1-30.7) at width 2048 depth 3; all of ``Monitor.step`` 0.57-0.59 (0.69-0.81),
0.70-0.72 (0.95), 3.20-3.29 (3.58-3.85), 40.5-43.4 (42.9-43.9).

Session noise2 (2026-12-07 06:46-06:50 UTC, load 2.2-3.4, the layer-by-layer plan on one
shared scratch and its C calls' arguments fixed at build, before = commit 83fc057, ms):
grad-noise 0.18 (before 0.20-0.22) at width 128 depth 2, 1.69-1.82 (1.87-2.05) at width 512
depth 3, 27.8 (29.1) at width 2048 depth 3; all of ``Monitor.step`` 0.55-0.56 (0.58-0.61),
3.03-3.32 (3.20-3.52), 40.5 (42.0).

``--hooks ROUNDS`` times what the capture's hooks add to forward + backward (no-op forward
hooks, a no-op hook on each output's backward node, that hook keeping the records, the
capture itself; session noise, 40-60 rounds at width 128 depth 2: 0.009-0.014, 0.052-0.062,
0.062-0.073, 0.097-0.117 ms; 20 rounds at width 512 depth 3: 0.014, 0.130, 0.148, 0.247).
Session plan (2026-12-07 06:27-06:32 UTC, load 1.5-2.5, the kept norm plan, rotations and
update ratios formed in the C pass, the module tree walked on change only; before = commit
424616b, ms): width 128 depth 2: grad-norm 0.125 (before 0.133-0.138), rotation 0.011
(0.050-0.052), update-ratio 0.012 (0.021-0.022), all of ``Monitor.step`` 0.67-0.69
(0.75-0.78); width 128 depth 3: 0.141 (0.145), 0.012 (0.051), 0.012 (0.021), 0.77 (0.82);
width 512 depth 3: 0.86 (0.89), 0.024 (0.087), 0.025 (0.027), 3.37 (3.33, grad-noise moved
by 0.12 between the runs). With ``--every 16 --steps 1600``: the step before a due one
0.156-0.166 (0.158-0.181), ``Monitor.step`` over a cycle 1.47-1.53 (1.43-1.57).
Session plan2 (2026-12-07 07:07 UTC, load 0.8-1.5, the norm table's rows and totals read
without views, before = commit b69ed6b, two runs each, ms): width 128 depth 2: grad-norm
0.124-0.128 (0.135-0.142, now with the totals' read), update-ratio 0.009-0.010 (0.013),
all of ``Monitor.step`` 0.475-0.492 (0.505-0.529).

Session noise3 (2026-12-07 08:59-09:05 UTC, load 2.3-2.9, grad-noise's Python and the
capture's hooks leaner, before = commit 2d96217, two pairs, ms): grad-noise 0.122-0.127
(before 0.149-0.152) and all of ``Monitor.step`` 0.335-0.347 (0.372-0.378) at width 128
depth 2; grad-noise 1.25-1.29 (1.32-1.35) and forward + backward 3.37-3.43 (3.51-3.52) at
width 512 depth 3. ``--hooks 60`` at width 128 depth 2: the capture +0.060-0.062
(+0.085-0.094) against +0.053-0.067 for a closure keeping the same tensors; the
``LinearCapture`` row takes the records as grad-noise does (``take_raw``).

``Monitor.step (own)`` is the monitor's own part of each step: all of ``Monitor.step`` less
the parts timed (each probe's ``Monitor._measure``, savepoint included, and the snapshot).
Session mono3 (2026-12-07 09:05-09:10 UTC, load 1.7-1.9, the monitor's own Python at a due
step, before = commit 2d96217, one process after the other, ms): own 0.074-0.076 (before
0.086-0.091) at width 128 depth 2, 0.089 (0.097) at depth 3, 0.114 (0.131) at width 512
depth 3.

``--every 16`` times the due steps, the steps before them and the others apart (session
eco16, 2026-12-07 03:57 UTC, load 3, width 128 depth 2, 1600 steps, before = commit aed95ae,
two runs each, ms): ``Monitor.step`` at the other steps 0.015-0.016 (before 0.033-0.034),
before a due step 0.16-0.18 (0.17-0.18), at a due step 1.25-1.35 (1.26-1.27); forward +
backward at a due step 0.67-0.73 against 0.53-0.56 at the others (the capture's hooks);
``Monitor.step`` summed over a cycle of 16 steps (``--steps 3200``, 04:26 UTC, load 4) 1.69-1.78
(before 1.96-2.05).

``--count-ops`` also counts the aten calls of one ``Monitor.step`` (dispatched by the Python
code, and with the ones they make inside): at width 128 depth 2, 113 / 440 at commit aac711a,
88 / 299 after session econ2, 45 / 133 with the C sums of session eco1 (``--eager``: 89 /
300). ``--eager`` turns those sums off (``TRAINLAB_FUSED=0``).

Example:
    python benchmarks/economy_profile.py --width 2048 --depth 3 --steps 10
    python benchmarks/economy_profile.py --width 128 --depth 2 --hooks 40
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
from trainlab.probes import Probe, build_probes, fused
from trainlab.tasks import build_task
from trainlab.train import Monitor
from trainlab.train.monitor import _Savepoint


def profile(width: int, depth: int, steps: int, batch: int, spec: str, every: int = 1,
            again: bool = False) -> dict[str, list[float]]:
    """Seconds (process clock) per part and step, over ``steps`` timed steps; with the
    probes due every ``every`` > 1 steps, the training step's parts and all of
    ``Monitor.step`` are kept apart for the due steps, the steps before them and the
    others, and summed over each whole cycle of ``every`` steps. ``again``: each probe
    without hooks is measured a second time right after the first, its savepoint rolled
    back in between (the same work on the same state, with warm caches: the difference is
    what the first pays for cold caches)."""
    task = build_task("mnist1d")
    model, opt = make(0, task, width, depth)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes(spec, every=every), seed=1)
    times: dict[str, list[float]] = defaultdict(list)
    clock = time.process_time
    measure, snapshot = mon._measure, mon._snapshot

    def timed_measure(probe, ctx):
        saved = (_Savepoint(probe, ctx) if again and type(probe).attach is Probe.attach
                 else None)  # a probe with hooks takes its records: no second time
        start = clock()
        try:
            out = measure(probe, ctx)
        finally:
            times[probe.name].append(clock() - start)
            parts[0] += times[probe.name][-1]
        if saved is not None:
            saved.restore()
            start = clock()
            out = measure(probe, ctx)
            times[f"{probe.name} (again)"].append(clock() - start)
            parts[0] += times[f"{probe.name} (again)"][-1]
        return out

    def timed_snapshot(*args):
        start = clock()
        try:
            return snapshot(*args)
        finally:
            times["snapshot"].append(clock() - start)
            parts[0] += times["snapshot"][-1]

    mon._measure, mon._snapshot = timed_measure, timed_snapshot
    parts = [0.0]  # the timed parts of the current Monitor.step
    g = torch.Generator().manual_seed(0)
    n = len(task.x_train)
    cycle = [0.0, 0.0]  # Monitor.step and the training step over the current cycle
    try:
        for k in range(steps + 2):
            idx = torch.randint(0, n, (batch,), generator=g)
            x, y = task.x_train[idx], task.y_train[idx]
            t0 = clock()
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            t1 = clock()
            parts[0] = 0.0
            mon.step(loss, (x, y))
            t2 = clock()
            opt.step()
            t3 = clock()
            if k < 2:  # untimed: the buffers of the probes and the optimizer allocated
                times.clear()
                continue
            phase = ("" if every == 1 else " (due)" if k % every == 0
                     else " (before due)" if (k + 1) % every == 0 else " (other)")
            times[f"forward + backward{phase}"].append(t1 - t0)
            times[f"Monitor.step (all){phase}"].append(t2 - t1)
            times[f"Monitor.step (own){phase}"].append(t2 - t1 - parts[0])
            times[f"Adam step{phase}"].append(t3 - t2)
            if every > 1 and k >= every:  # whole cycles, from the second on
                cycle[0] += t2 - t1
                cycle[1] += (t1 - t0) + (t3 - t2)
                if (k + 1) % every == 0:
                    times[f"Monitor.step, cycle of {every}"].append(cycle[0])
                    times[f"training step, cycle of {every}"].append(cycle[1])
                    cycle = [0.0, 0.0]
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


HOOK_KINDS = ("bare", "forward hooks", "+ node hooks", "+ records kept", "LinearCapture")


def hook_costs(width: int, depth: int, batch: int, rounds: int, steps: int = 20
               ) -> dict[str, list[float]]:
    """Seconds (process clock) of one forward + backward pass (``zero_grad`` included) per
    round of ``steps`` passes on one batch, for each way of recording, interleaved round by
    round: none; a no-op forward hook per Linear (what any module hook costs: the module
    leaves PyTorch's fast call path); that hook registering a no-op hook on its output's
    backward node; that node hook keeping the input, the output gradient and the layer's
    own weight and bias gradients (the tensors outlive the pass, and autograd copies a
    gradient it cannot hand on); the capture itself (armed at every pass)."""
    from trainlab.probes.per_sample import LinearCapture

    task = build_task("mnist1d")
    model, opt = make(0, task, width, depth)
    x, y = task.x_train[:batch], task.y_train[:batch]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    capture = LinearCapture(model)
    store: dict = {}

    def hook(kind: str):
        def forward(module, args, out):
            a = args[0]
            if kind == "+ node hooks":
                out.grad_fn.register_hook(lambda gi, go: None)
            elif kind == "+ records kept":
                out.grad_fn.register_hook(
                    lambda gi, go: store.__setitem__(module, (a, go[0], gi[2], gi[0])))
        return forward

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    times: dict[str, list[float]] = {k: [] for k in HOOK_KINDS}
    clock = time.process_time
    for _ in range(rounds):
        for kind in HOOK_KINDS:
            handles = ([] if kind in ("bare", "LinearCapture") else
                       [m.register_forward_hook(hook(kind), prepend=True) for m in linears])
            for k in range(steps + 2):
                if k == 2:
                    start = clock()
                if kind == "LinearCapture":
                    capture.arm(True)
                step()
                capture.take_raw()  # (what grad-noise takes)
                store.clear()
            times[kind].append((clock() - start) / steps)
            capture.arm(False)
            for h in handles:
                h.remove()
    capture.remove()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--preset", default="economy")
    ap.add_argument("--every", type=int, default=1,
                    help="cadence of the probes (> 1: due steps, the steps before them and "
                         "the others timed apart)")
    ap.add_argument("--again", action="store_true",
                    help="measure each probe without hooks a second time at once, warm")
    ap.add_argument("--count-ops", action="store_true",
                    help="also count the aten calls of one Monitor.step")
    ap.add_argument("--eager", action="store_true",
                    help="the one-pass C sums (trainlab.probes.fused) off")
    ap.add_argument("--hooks", type=int, default=0, metavar="ROUNDS",
                    help="instead: what the capture's hooks cost in forward + backward, "
                         "ROUNDS interleaved rounds of 20 passes per way of recording")
    args = ap.parse_args()
    torch.set_num_threads(1)
    fused.set_enabled(not args.eager)
    if args.hooks:
        costs = hook_costs(args.width, args.depth, args.batch, args.hooks)
        base = statistics.median(costs["bare"])
        print(f"torch {torch.__version__}, 1 thread, process clock, MLP width {args.width} "
              f"depth {args.depth}, batch {args.batch}, {args.hooks} rounds of 20 forward + "
              f"backward passes, load average "
              f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
        for kind, ts in costs.items():
            print(f"{kind:>16}: median {1e3 * statistics.median(ts):8.3f} ms (+"
                  f"{1e3 * (statistics.median(ts) - base):6.3f})  min {1e3 * min(ts):8.3f} ms")
        return
    if args.count_ops:
        top, nested = count_ops(args.width, args.depth, args.batch, args.preset)
        print(f"aten calls in one Monitor.step: {top} dispatched, {nested} with nested")
    times = profile(args.width, args.depth, args.steps, args.batch, args.preset, args.every,
                    args.again)
    print(f"torch {torch.__version__}, 1 thread, process clock, MLP width {args.width} depth "
          f"{args.depth}, batch {args.batch}, {args.steps} steps, every {args.every}, "
          f"{'eager' if args.eager else 'fused'} sums, load average "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for part, ts in sorted(times.items()) if args.every > 1 else times.items():
        print(f"{part:>33}: median {1e3 * statistics.median(ts):8.3f} ms  "
              f"min {1e3 * min(ts):8.3f} ms")


if __name__ == "__main__":
    main()
