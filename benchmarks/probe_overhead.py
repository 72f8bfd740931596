"""In-loop overhead of the ``economy`` probe preset (loss, gradient norms, distance from
init, update size, gradient noise/GSNR) over an untracked training loop.

An MLP (40-128-128-10) trained with Adam on MNIST-1D, batch 128. The reference is the same
plain torch loop without probes, timed in the same process; each configuration measures the
probes at every step, every 16 and every 256 steps. The tracked loop does what a monitor
does (:class:`trainlab.train.Monitor`): after the backward pass and before the update it
builds a :class:`~trainlab.probes.ProbeContext`, calls ``measure`` on the due probes, turns
the results into floats once per step, and snapshots the parameters before the update when a
probe due at the next step compares against them. Prints the median time per step and the
median over rounds of the ratio to the untracked loop of the same round (Cockpit's published
CPU figure for its economy preset on an MNIST MLP at every step is about 63x; see
notes/diagnostics.md).

Example:
    python benchmarks/probe_overhead.py --steps 512 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from trainlab.models import build_model
from trainlab.probes import ProbeContext, build_probes
from trainlab.tasks import build_task


def make(seed: int, task):
    torch.manual_seed(seed)
    model = build_model("mlp", task.input_shape, task.num_outputs, depth=2, width=128)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def run(task, steps: int, batch: int, every: int | None, clock=time.perf_counter) -> float:
    """Seconds per step of ``steps`` training steps, probes due every ``every`` steps."""
    model, opt = make(0, task)
    g = torch.Generator().manual_seed(0)
    probes = build_probes("economy", every=every) if every else []
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    probe_gen = torch.Generator().manual_seed(1)
    n = len(task.x_train)
    sink = 0.0
    start = clock()
    prev = None
    for step in range(steps):
        idx = torch.randint(0, n, (batch,), generator=g)
        x, y = task.x_train[idx], task.y_train[idx]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        due = [p for p in probes if p.due(step)]
        if due:  # after backward, before the update, as trainlab.train.Monitor does
            ctx = ProbeContext(step=step, model=model, loss_fn=F.cross_entropy, batch=(x, y),
                               loss=loss.detach(), optimizer=opt, lr=1e-3, init_params=init,
                               prev_params=prev, generator=probe_gen)
            values = {}
            for p in due:
                values.update(p.measure(ctx))
            tensors = [v for v in values.values() if isinstance(v, torch.Tensor)]
            if tensors:  # one conversion (one device sync) per step
                sink += float(torch.stack([t.detach().double().reshape(()) for t in tensors]
                                          ).sum())
        # parameters before the update, kept only when a probe due next step compares them
        prev = ({k: p.detach().clone() for k, p in model.named_parameters()}
                if any(p.needs_prev_params and p.due(step + 1) for p in probes) else None)
        opt.step()
    elapsed = clock() - start
    del sink  # accumulated only so that every value is really computed
    return elapsed / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=("wall", "process"), default="wall",
                        help="process: CPU time of this process (robust on a machine shared "
                             "with other jobs; equal to wall time on an idle one, 1 thread)")
    parser.add_argument("--json", type=str, default="", help="write results to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = build_task("mnist1d")
    configs = {"untracked": None, "economy@1": 1, "economy@16": 16, "economy@256": 256}
    clock = time.process_time if args.clock == "process" else time.perf_counter
    run(task, 32, args.batch, 1)  # warm-up (allocator, first-call overheads)
    times: dict[str, list[float]] = {k: [] for k in configs}
    ratios: dict[str, list[float]] = {k: [] for k in configs}
    names = list(configs)
    for r in range(args.repeats):
        # interleaved, in a rotated order, and each ratio against the untracked run of the
        # same round: load that drifts (other processes) hits numerator and denominator alike
        order = names[r % len(names):] + names[:r % len(names)]
        round_t = {name: run(task, args.steps, args.batch, configs[name], clock)
                   for name in order}
        for name, t in round_t.items():
            times[name].append(t)
            ratios[name].append(t / round_t["untracked"])
    print(f"torch {torch.__version__}, threads {args.threads}, {platform.processor() or 'cpu'}, "
          f"{args.steps} steps x {args.repeats} repeats, batch {args.batch}, {args.clock} clock")
    results = {}
    for name, ts in times.items():
        med, ratio = statistics.median(ts), statistics.median(ratios[name])
        lo, hi = min(ratios[name]), max(ratios[name])
        results[name] = {"ms_per_step": 1e3 * med, "ratio": ratio, "ratio_min": lo,
                         "ratio_max": hi}
        print(f"{name:>12}: {1e3 * med:7.3f} ms/step  ratio {ratio:5.2f}x  "
              f"(per-round ratios {lo:.2f}-{hi:.2f})")
    if args.json:
        env = {"torch": torch.__version__, "threads": args.threads, "clock": args.clock,
               "cpu": platform.processor(), "python": platform.python_version()}
        with open(args.json, "w") as f:
            json.dump({"environment": env, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
