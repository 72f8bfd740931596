"""Learned linear solvers against classical preconditioners: CG iterations and time to a
relative residual of 1e-8 on held-out coefficients of the 64x64 random-coefficient Poisson
family (papers.md rows 59 and 108; the issue's target: >= 2x fewer iterations than Jacobi).

For each seed: a family drawn from that seed (lognormal coefficients, sigma 1, correlation
length 0.1), each learned method trained on ``--train`` systems, then every method (learned,
plain CG, Jacobi, IC(0), pyamg smoothed-aggregation AMG) solves the same ``--test`` held-out
systems. Printed per method: iterations (mean, sd, range over systems and seeds), the
preconditioner's setup time and the iteration time (seconds per system, this machine, threads
pinned by ``--threads``), and iterations relative to Jacobi. Training time is printed
separately: it is paid once per family. IC(0)'s setup is a Python loop (see
``trainlab.pinn.solvers.classical``), so its setup time is not representative of a compiled
incomplete Cholesky.

Measured on the shared 2-core CPU (1 thread, load average about 16), seeds 0, 1, 2, 24
held-out systems, neural-pcg with its defaults (width 32, 6 rounds, 300 Adam steps):
  neural-pcg  52.3 +- 3.6 iterations (46-59): 4.79x fewer than Jacobi (250.8 +- 3.6), 1.45x
              fewer than IC(0) (76.0 +- 1.7); AMG 8.9 +- 0.3; plain CG 819.6 +- 140.7.
              Setup 0.57 s (GNN + factor), iterations 0.062 s per system (Jacobi 0.075 s);
              training 355-719 s per seed.
              Piecewise family (``trainlab pinn solvers --kind piecewise``, seed 0): 89.4
              against Jacobi 252.2 (2.8x), IC(0) 77.1, AMG 9.8.
  dcdm        over this random-coefficient family it is outside its paper's setting (one
              fixed matrix): with 200 steps at lr 1e-3 no held-out system converged in 2000
              iterations. In the paper's setting (``benchmarks/dcdm_fixed.py``: the fixed
              32x32 Poisson matrix, held-out right-hand sides) it needs 23.4 iterations to
              1e-8 against CG's 101.1 and IC(0)'s 35.8.

Usage: python benchmarks/learned_pcg.py [--n 64] [--train 16] [--test 8] [--seeds 0,1,2]
       [--methods neural-pcg] [--param neural-pcg.steps=300] [--threads 1] [--json F]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from trainlab.pinn.solvers import PoissonFamily
from trainlab.pinn.solvers.evaluate import BASELINES, compare
from trainlab.train.config import parse_value


def _params(items: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for item in items:
        key, _, value = item.partition("=")
        method, _, name = key.partition(".")
        out.setdefault(method, {})[name] = parse_value(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--kind", default="lognormal")
    parser.add_argument("--train", type=int, default=16)
    parser.add_argument("--test", type=int, default=8)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default="neural-pcg")
    parser.add_argument("--param", action="append", default=[],
                        metavar="METHOD.KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    params = _params(args.param)

    rows: dict[str, dict[str, list]] = {}
    training: dict[str, list] = {}
    for seed in seeds:
        family = PoissonFamily(n=args.n, kind=args.kind, seed=seed)
        for k, method in enumerate(methods):
            start = time.perf_counter()
            c = compare(method, family=family, train=args.train, test=args.test,
                        baselines=BASELINES if k == 0 else (), seed=seed,
                        params=params.get(method))
            training.setdefault(method, []).append(
                {"seed": seed, "seconds": c.training.get("seconds"),
                 "final_loss": (c.training.get("loss") or [float("nan")])[-1],
                 "wall": time.perf_counter() - start})
            for r in c.results:
                d = rows.setdefault(r.name, {"iterations": [], "converged": [], "setup": [],
                                             "solve": []})
                d["iterations"] += list(r.iterations)
                d["converged"] += list(r.converged)
                d["setup"] += list(r.setup_seconds)
                d["solve"] += list(r.solve_seconds)

    jac = float(np.mean(rows["jacobi"]["iterations"])) if "jacobi" in rows else float("nan")
    print(f"{args.n}x{args.n} {args.kind} Poisson, {args.train} train / {args.test} held-out "
          f"per seed, seeds {seeds}, rtol 1e-8, {args.threads} thread(s)")
    print(f"{'method':<12} {'iterations':>16} {'range':>11} {'conv':>7} {'setup s':>9} "
          f"{'solve s':>9} {'jacobi/it':>9}")
    table = []
    for name, d in rows.items():
        it = np.array(d["iterations"], dtype=float)
        row = {"method": name, "iterations_mean": it.mean(), "iterations_std": it.std(),
               "min": int(it.min()), "max": int(it.max()),
               "converged": f"{sum(d['converged'])}/{len(d['converged'])}",
               "setup_s": float(np.mean(d["setup"])), "solve_s": float(np.mean(d["solve"])),
               "jacobi_over_method": jac / it.mean()}
        table.append(row)
        print(f"{name:<12} {row['iterations_mean']:>8.1f} +- {row['iterations_std']:<5.1f} "
              f"{row['min']:>5}-{row['max']:<5} {row['converged']:>7} {row['setup_s']:>9.3g} "
              f"{row['solve_s']:>9.3g} {row['jacobi_over_method']:>9.2f}")
    for method, runs in training.items():
        secs = ", ".join(f"{r['seconds']:.0f}" for r in runs)
        loss = ", ".join(f"{r['final_loss']:.3g}" for r in runs)
        print(f"training {method}: {secs} s per seed; final training loss {loss}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "rows": table, "training": training}, fh,
                      indent=2, default=float)


if __name__ == "__main__":
    main()
