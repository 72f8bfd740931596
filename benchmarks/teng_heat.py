"""TENG-Euler against TENG-Heun on the 2D periodic heat equation (papers.md row 7).

Both integrators start from the same network fitted to the initial condition (TENG's periodic
network, ``--width``/``--depth``, float64) and step to ``--horizon`` with ``--dt``; printed:
the relative L2 error against the series reference (``trainlab.pinn.problems.heat2d``, its
floor about 1e-12) at each evaluation time, the space-time error, and the wall time; a
figure of the error over time goes to ``--out`` (PNG) when given.

Measured on the shared 2-core CPU (1 thread, load about 10), seed 0, width 24, depth 3
(697 parameters), 32 x 32 quadrature, dt 0.05, horizon 1:
  defaults (600 initial LM iterations, 15 + 12 damped iterations per step):
    initial fit 1.2e-4 (205 s); TENG-Euler space-time rel L2 4.9e-3 (70 s; first-order
    time error grows to 6.4e-3 at t = 1); TENG-Heun 2.0e-4 (107 s; stays at the level of
    the initial fit, 1.5e-4 at t = 1)
  with the paper's 7 + 5 iterations (and 300 initial iterations): initial 2.8e-4, Euler
    1.5e-2, Heun 2.3e-3: the damped fits do not converge in that many iterations.
These errors are the time integrators' own at dt 0.05, not the initial fit's:
``trainlab.pinn.chen2024_teng.heat2d_time_error`` (each Fourier mode stepped by the scheme's
amplification factor) gives 1.84e-4 for Heun and 4.92e-3 for Euler. Heun reaches the issue's
1e-5 only from dt 0.01 (6.6e-6; 1.03e-5 at dt 0.0125); Euler needs dt 1e-4 (9.5e-6, 10,000
steps). The runs at dt 0.01 are in ``benchmarks/teng.py``.

Usage: python benchmarks/teng_heat.py [--horizon 1] [--dt 0.05] [--out teng.png]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from trainlab.pinn.chen2024_teng import fit_initial, teng, teng_network
from trainlab.pinn.problems import build_problem
from trainlab.pinn.problems._problem import tensor_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=float, default=1.0)
    parser.add_argument("--dt", type=float, default=0.05)
    parser.add_argument("--grid-t", type=int, default=11)
    parser.add_argument("--points", type=int, default=32)
    parser.add_argument("--width", type=int, default=24)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--first-iterations", type=int, default=15)
    parser.add_argument("--initial-iterations", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    problem = build_problem("heat-2d", horizon=args.horizon, grid_t=args.grid_t, grid_x=32)
    gen = torch.Generator().manual_seed(args.seed)
    net = teng_network((problem.upper[1], problem.upper[2]), args.width, args.depth, gen)
    start = time.perf_counter()
    axis = torch.arange(args.points, dtype=torch.float64) * (problem.upper[1] / args.points)
    x = tensor_grid(axis, axis)
    u0 = problem.reference(torch.cat([torch.zeros(len(x), 1, dtype=x.dtype), x], 1))[:, 0]
    fit = fit_initial(net, x, u0, args.initial_iterations)
    print(f"initial fit: relative residual {fit:.2e} in {time.perf_counter() - start:.1f} s")
    results = {}
    for scheme in ("euler", "heun"):
        res = teng(problem, copy.deepcopy(net), scheme=scheme, dt=args.dt,
                   iterations=args.iterations, first_iterations=args.first_iterations,
                   points=args.points, initial_iterations=0)
        results[scheme] = res
        errs = " ".join(f"{e:.1e}" for e in res.rel_l2)
        print(f"TENG-{scheme}: space-time rel L2 {res.space_time_rel_l2:.2e}, "
              f"{res.seconds:.1f} s, {res.config['parameters']} parameters; per time: {errs}")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for scheme, res in results.items():
            ax.semilogy(res.times, res.rel_l2, "o-", label=f"TENG-{scheme}")
        ax.set_xlabel("t")
        ax.set_ylabel("relative L2 error")
        ax.set_title(f"2D heat, dt={args.dt}, {res.config['parameters']} parameters")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out, dpi=120)
        print("figure:", args.out)


if __name__ == "__main__":
    main()
