"""Trainer overhead over a plain PyTorch loop, measured in one process.

Prints, for an MLP on MNIST-1D with AdamW (fused) and the D2Z schedule:
  - Trainer with probes off        / plain loop   (target <= 1.02)
  - Trainer with standard probes every 50 steps / plain loop
  - Trainer with standard probes every 50 steps / Trainer with probes off (target <= 1.15)
  - the same with a sparser cadence for the two costly probes, ``--probes
    standard,eval@200,sharpness@200`` (a configuration the user names, not ``standard``):
    every probe of the preset, the evaluation and the sharpness every 200 steps
  - each standard probe's cost per measurement, in training steps of the probes-off Trainer
    (from one extra run that times ``Monitor._measure``, outside the timed repetitions); the
    evaluation probe should cost no more than the 50 steps it summarizes; and the ratio these
    costs predict, 1 + (sum of the costs) / 50
Each figure is the median of ``--reps`` alternating repetitions. Results also go to JSON.

Usage: python benchmarks/trainer_overhead.py [--steps 2000] [--reps 3] [--threads 1]
       [--clock wall|process]

``--clock process`` times CPU seconds of this process (with one thread it is robust to other
load on the machine); ``wall`` is the default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from trainlab.init import apply as apply_init
from trainlab.models import build_model
from trainlab.optim import ScheduleLR, build_optimizer, build_schedule
from trainlab.store import RunStore
from trainlab.tasks import build_task
from trainlab.train import RunConfig, Trainer
from trainlab.train import monitor as monitor_module

CLOCK = {"wall": time.perf_counter, "process": time.process_time}
SPARSE = "standard,eval@200,sharpness@200"
clock = time.perf_counter


def plain_loop(cfg: RunConfig) -> float:
    """The loop a user would write by hand: same model, init, optimizer, schedule, batches.
    Timed, like :func:`trainer_run`, from the config in hand (the data already generated and
    cached on disk) to the last step, so both sides include building the task, model, init,
    optimizer and schedule; the Trainer's extra fixed cost (config validation, the store's run
    record and final flush) and its per-step cost are what the ratio shows."""
    t0 = clock()
    task = build_task(cfg.task, **cfg.task_params)
    model = build_model(cfg.model, task.input_shape, task.num_outputs, **cfg.model_params)
    apply_init(model, cfg.init, generator=torch.Generator().manual_seed(cfg.seed))
    opt = build_optimizer(cfg.optim, model.parameters(), cfg.lr, **cfg.optim_params)
    sched = ScheduleLR(opt, build_schedule(cfg.schedule, cfg.steps, **cfg.schedule_params))
    g = torch.Generator().manual_seed(cfg.seed + 1)
    n, b = len(task.x_train), cfg.batch_size
    perm, pos, losses = torch.randperm(n, generator=g), 0, []
    for _ in range(cfg.steps):
        if pos + b > n:
            perm, pos = torch.randperm(n, generator=g), 0
        idx = perm[pos:pos + b]
        pos += b
        opt.zero_grad(set_to_none=True)
        loss = task.loss(model(task.x_train[idx]), task.y_train[idx])
        loss.backward()
        losses.append(loss.item())  # a user logs the loss too
        opt.step()
        sched.step()
    return clock() - t0


def trainer_run(cfg: RunConfig, root: Path) -> float:
    t0 = clock()
    Trainer(cfg, store=RunStore(root), report=False).run()
    return clock() - t0


def probe_costs(cfg: RunConfig, root: Path) -> dict[str, float]:
    """Median seconds per measurement of each probe, from one run with ``Monitor._measure``
    timed."""
    times: dict[str, list[float]] = {}
    original = monitor_module.Monitor._measure

    def timed(self, probe, ctx):
        t0 = clock()
        out = original(self, probe, ctx)
        times.setdefault(probe.name, []).append(clock() - t0)
        return out

    monitor_module.Monitor._measure = timed
    try:
        Trainer(cfg, store=RunStore(root), report=False).run()
    finally:
        monitor_module.Monitor._measure = original
    return {name: statistics.median(v) for name, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=sorted(CLOCK), default="wall")
    ap.add_argument("--out", default="benchmarks/results/trainer_overhead.json")
    args = ap.parse_args()
    global clock
    clock = CLOCK[args.clock]
    torch.set_num_threads(args.threads)
    base = RunConfig(steps=args.steps)
    off, standard = base.replace(probes="none"), base.replace(probes="standard", every=50)
    sparse = base.replace(probes=SPARSE, every=50)
    build_task(base.task, **base.task_params)  # generate and cache the data once
    times: dict[str, list[float]] = {"plain": [], "probes_off": [], "standard_every_50": [],
                                     "standard_sparse": []}
    with tempfile.TemporaryDirectory() as tmp:
        # untimed warm-up of each configuration (first-call costs: store, allocator, probes)
        plain_loop(base.replace(steps=50))
        trainer_run(off.replace(steps=50), Path(tmp) / "warm_off")
        trainer_run(standard.replace(steps=50), Path(tmp) / "warm_std")
        for rep in range(args.reps):
            times["plain"].append(plain_loop(base))
            times["probes_off"].append(trainer_run(off, Path(tmp) / f"off{rep}"))
            times["standard_every_50"].append(trainer_run(standard, Path(tmp) / f"std{rep}"))
            times["standard_sparse"].append(trainer_run(sparse, Path(tmp) / f"sparse{rep}"))
        costs = probe_costs(standard, Path(tmp) / "costs")
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {"probes_off_over_plain": med["probes_off"] / med["plain"],
              "standard_every_50_over_plain": med["standard_every_50"] / med["plain"],
              "standard_every_50_over_probes_off": med["standard_every_50"] / med["probes_off"],
              "standard_sparse_over_probes_off": med["standard_sparse"] / med["probes_off"]}
    step_s = med["probes_off"] / args.steps
    steps_per_measurement = {name: c / step_s for name, c in costs.items()}
    ratios["standard_every_50_predicted"] = 1 + sum(steps_per_measurement.values()) / 50
    print(f"steps={args.steps} reps={args.reps} threads={args.threads} clock={args.clock} "
          f"torch={torch.__version__} load={os.getloadavg()[0]:.1f}")
    for k, v in med.items():
        print(f"  {k:<20} median {v:7.3f} s   ({1e3 * v / args.steps:.3f} ms/step)   "
              f"spread {min(times[k]):.3f}-{max(times[k]):.3f} s")
    print(f"  Trainer (probes off) / plain loop     = {ratios['probes_off_over_plain']:.3f}"
          "   (target <= 1.02)")
    print(f"  Trainer (standard @50) / plain loop   = {ratios['standard_every_50_over_plain']:.3f}")
    print(f"  Trainer (standard @50) / probes off   = "
          f"{ratios['standard_every_50_over_probes_off']:.3f}   (target <= 1.15)")
    print(f"  Trainer ({SPARSE}) / probes off = "
          f"{ratios['standard_sparse_over_probes_off']:.3f}")
    print(f"  predicted by the costs below, 1 + sum / 50 = "
          f"{ratios['standard_every_50_predicted']:.3f}")
    print("  cost per measurement, in probes-off training steps (every 50 steps):")
    for name, n in sorted(steps_per_measurement.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<14} {n:6.2f} steps  ({1e3 * costs[name]:.2f} ms)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"times": times, "median": med, "ratios": ratios,
                               "probe_steps_per_measurement": steps_per_measurement,
                               "env": {"torch": torch.__version__, "threads": args.threads,
                                       "python": platform.python_version(),
                                       "cpu": platform.processor()}}, indent=2))


if __name__ == "__main__":
    main()
