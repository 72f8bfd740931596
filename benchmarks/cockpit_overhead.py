"""trainlab's ``economy`` probes against Cockpit's ``economy`` configuration, in one process.

Cockpit ("Cockpit: A Practical Debugging Tool for the Training of Deep Neural Networks",
Schneider, Dangel & Hennig, 2021) computes its instruments with BackPACK, which pulls
torchvision and pins its own torch range, so it lives in a separate benchmark environment,
never in the test one: ``make bench-cockpit`` builds ``.venv-bench`` (torch 2.13.0 CPU from
``constraints.txt``, torchvision, BackPACK, Cockpit and trainlab) and runs this script.

The model is the same for all three loops: ``Sequential(Linear(40,128), ReLU, Linear(128,
128), ReLU, Linear(128,10))`` (BackPACK needs a Sequential of supported layers) on MNIST-1D,
batch 128, Adam lr 1e-3. Three loops, interleaved in rotated order, each ratio against the
untracked loop of the same round:

- ``untracked``: forward, backward, step;
- ``trainlab economy@1``: the same plus a :class:`trainlab.train.Monitor` with the economy
  preset (gradient norms, distance from init, update ratio, per-example gradient noise and
  GSNR) measured at every step;
- ``cockpit economy@1``: the same loop under ``with cockpit(step, info=...)`` with
  ``configuration("economy")`` (Alpha, Distance, GradHist1d, GradNorm, InnerTest, Loss,
  NormTest, OrthoTest, UpdateSize), every quantity tracked at every step, as in the Cockpit
  paper's run-time figure.

The two presets overlap but are not the same set (Cockpit adds a gradient histogram, the
alpha/line-search quantity and three batch-size tests; trainlab adds GSNR and per-layer
values): read the ratio as the cost of "the cheap in-loop instruments" of each tool.

Example:
    make bench-cockpit
    .venv-bench/bin/python benchmarks/cockpit_overhead.py --steps 128 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings

import torch
from torch import nn

from trainlab.probes import build_probes
from trainlab.tasks import build_task
from trainlab.train import Monitor


def make_model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(40, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def run(task, kind: str, steps: int, batch: int, clock) -> float:
    """Seconds per training step of loop ``kind``."""
    model = make_model(0)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    n = len(task.x_train)
    mon = cp = None
    if kind == "cockpit":
        from backpack import extend
        from cockpit import Cockpit
        from cockpit.utils.configuration import configuration

        model = extend(model)
        loss_fn = extend(nn.CrossEntropyLoss())
        individual = nn.CrossEntropyLoss(reduction="none")
        cp = Cockpit(model.parameters(), quantities=configuration("economy"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if kind == "trainlab":
        mon = Monitor(model, loss_fn=loss_fn, optimizer=opt,
                      probes=build_probes("economy", every=1), seed=1)
    start = clock()
    for step in range(steps):
        idx = torch.randint(0, n, (batch,), generator=g)
        x, y = task.x_train[idx], task.y_train[idx]
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = loss_fn(out, y)
        if cp is not None:
            info = {"batch_size": batch, "individual_losses": individual(out, y), "loss": loss,
                    "optimizer": opt}
            with cp(step, info=info):
                loss.backward(create_graph=cp.create_graph(step))
        else:
            loss.backward()
            if mon is not None:
                mon.step(loss, (x, y))
        opt.step()
    elapsed = clock() - start
    if mon is not None:
        mon.finish()
    return elapsed / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=("wall", "process"), default="process")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # Cockpit's imports warn about pkg_resources
    task = build_task("mnist1d")
    clock = time.process_time if args.clock == "process" else time.perf_counter
    kinds = ["untracked", "trainlab", "cockpit"]
    for kind in kinds:  # warm-up
        run(task, kind, 8, args.batch, clock)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    ratios: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(args.repeats):
        order = kinds[r % 3:] + kinds[:r % 3]
        got = {k: run(task, k, args.steps, args.batch, clock) for k in order}
        for k, t in got.items():
            times[k].append(t)
            ratios[k].append(t / got["untracked"])
    print(f"torch {torch.__version__}, threads {args.threads}, {args.steps} steps x "
          f"{args.repeats} repeats, batch {args.batch}, {args.clock} clock")
    results = {}
    for k in kinds:
        med, ratio = statistics.median(times[k]), statistics.median(ratios[k])
        results[k] = {"ms_per_step": 1e3 * med, "ratio": ratio,
                      "ratio_min": min(ratios[k]), "ratio_max": max(ratios[k])}
        print(f"{k + ' economy@1' if k != 'untracked' else k:>20}: {1e3 * med:8.3f} ms/step  "
              f"ratio {ratio:6.2f}x  (rounds {min(ratios[k]):.2f}-{max(ratios[k]):.2f})")
    print(f"cockpit / trainlab: {results['cockpit']['ratio'] / results['trainlab']['ratio']:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": {"torch": torch.__version__, "threads": args.threads,
                                       "clock": args.clock, "cpu": platform.processor()},
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
