"""Eulerian against Lagrangian PINNs on the advection speed ladder (papers.md row 66).

For each speed ``c``: the same tanh MLP (``--width``, depth 2, Xavier-normal, float64),
collocation counts and number of ENGD steps on ``pinn-advection`` (Eulerian: u(t, x)) and
``pinn-advection-lagrangian`` (state and characteristic of (t, X)); printed: the relative L2
error against the exact solution sin(x - c t) (for the Lagrangian model: at its predicted
positions, ``eulerian_error``) and the wall time.

Measured on the shared 2-core CPU (1 thread), seed 0, soft constraints, width 16, 400
interior points, 40 ENGD steps:
  c = 1    Eulerian 5.0e-2   Lagrangian 1.9e-4
  c = 10   Eulerian 7.4e-2   Lagrangian 3.7e-4
  c = 30   Eulerian 9.7e-1   Lagrangian 4.8e-4
(about 15 s per run). The paper's claim holds: the Eulerian PINN fails at high speed, the
Lagrangian one does not depend on it.

Usage: python benchmarks/lagrangian_advection.py [--speeds 1,10,30] [--steps 40]
"""

from __future__ import annotations

import argparse
import time

import torch

from trainlab.pinn.problems.advection_lagrangian import eulerian_error
from trainlab.pinn.task import fit_engd
from trainlab.tasks import build_task


def run(name: str, c: float, steps: int, width: int, points: int, seed: int) -> float:
    extra = {} if "lagrangian" in name else {"n_boundary": 60}
    task = build_task(name, c=c, n_interior=points, n_initial=60, grid_x=64, grid_t=21,
                      data_seed=seed, **extra)
    model = fit_engd(task, steps, width=width, seed=seed)
    if "lagrangian" in name:
        return eulerian_error(model.solution, task.problem)
    with torch.no_grad():
        return float(task.metrics(model(task.x_test), task.y_test)["rel_l2"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speeds", default="1,10,30")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--points", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for c in (float(s) for s in args.speeds.split(",")):
        row = []
        for name in ("pinn-advection", "pinn-advection-lagrangian"):
            start = time.perf_counter()
            err = run(name, c, args.steps, args.width, args.points, args.seed)
            row.append(f"{name.split('-')[-1]:>11} {err:.1e} ({time.perf_counter() - start:.0f} s)")
        print(f"c = {c:g}: " + "   ".join(row))


if __name__ == "__main__":
    main()
