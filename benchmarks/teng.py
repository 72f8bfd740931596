"""TENG time stepping (papers.md row 7) against issue 13's targets: 2D heat and 1D Allen-Cahn.

Targets (issue 13): heat, space-time relative L2 <= 1e-5 in <= 2 min; Allen-Cahn (the jaxpi
setting, ``trainlab.pinn.problems.allen_cahn``), relative L2 <= 1e-3 in <= 10 min (anchor:
jaxpi's default config, 5.84e-4 in 16 GPU minutes).

Timing: every number is printed as process CPU time (``time.process_time()``, torch limited to
1 thread) and wall time. The targets are judged on CPU time: the machine these numbers come
from has 2 cores shared by up to 9 processes, so wall time is inflated several-fold by other
people's jobs and says little about the method.

Method for Allen-Cahn (chosen before the 3-seed run): TENG-Heun time stepping of a spatial
network, not a space-time PINN. Reasons: the TENG paper solves Allen-Cahn with TENG-Heun
(its setting, read off its released reference files: 2D periodic [0, 2 pi]^2,
u_t = 0.005 (u_xx + u_yy) + u - u^3, the same initial condition as its heat benchmark) and
reports it ahead of PINN baselines trained by ENGD and BFGS; the ENGD paper (Mueller and
Zeinhofer 2023) has no Allen-Cahn case; jaxpi reaches its 5.84e-4 with a space-time PINN only
with causal weighting, Fourier features and 16 GPU minutes. A trial before the run (seed 0,
width 20, depth 3, 501 parameters, 1,024 quadrature points, dt 0.005, the paper's 7 + 5
iterations) gave 1.02e-3 in 73 s of CPU. The jaxpi problem is not the paper's (sharper
interfaces: eps = 1e-4 and the reaction 5u - 5u^3), listed under the deviations of
``trainlab.pinn.chen2024_teng``.

Recipe for Allen-Cahn, fixed (and committed) before its 3-seed run, from the fit residuals
measured by ``benchmarks/teng_fit_residuals.py --problem allen-cahn --it1 30 --it2 30`` on
seed 5 (not one of the three): with the paper's 7 + 5 iterations the fits stop far from their
floor; given 30 + 30, a stage's fit reaches its floor (1e-8 to 2e-7 of the target's norm from
step 10 on; 7e-6 in step 1) after 10 to 25 iterations, the residual then standing still (the
Levenberg-Marquardt steps rejected one after another), and a few stage-1 fits are still
falling at iteration 30. So each stage gets at most 30 iterations and stops once 4 iterations
lowered its residual by less than 1 % (``stall=0.01``); at the 7 + 5 run's ~20 ms of CPU per
iteration, the worst case (60 per step, 200 steps) is about 250 s of stepping plus the
initial fit, under half the 10-minute budget (the diagnostic itself took 1.9 s a step at
60 iterations under load ~8). All three seeds run this recipe, unchanged.
The same diagnostic on seed 5 (30 + 30, no stop rule): rel L2 1.1e-5 at t = 0.05, 2.0e-5 at
t = 0.1, 4.5e-5 at t = 0.3 (the 7 + 5 seed-0 run: 8.6e-5 at t = 0.1); stopped at t = 0.3 to
leave the machine to the 3-seed run. Heun's own error at dt 0.005 (pseudo-spectral method of
lines, 1,024 modes, against the ETDRK4 reference): 6.7e-5 space-time, 5.6e-5 at t = 1; at
dt 0.0025 1.7e-5.

Recipe for 2D heat (committed before seeds 1 and 2 ran; seed 0 was the exploring run that
chose it), from ``benchmarks/teng_fit_residuals.py``: a stage-2 fit's floor per step (about
2e-6 of the solution at dt 0.01) does not fall with the network's size (361 or 609
parameters) but falls about 4x when dt halves, so dt 0.005 (Heun's own error 1.6e-6); the
net is the smallest whose initial fit is well under the target off the quadrature grid
(609 parameters, width 16, depth 4, 32 x 32 points: 4.2e-6 on and off it, 40 s of CPU; the
361-parameter net on 24 x 24 reaches 9.5e-6 on the grid and 2.3e-5 off it); and the fit
iterations go to stage 2 (4 + 8 instead of 7 + 5, the same cost), since stage 1 only sets
stage 2's target, through F at its end, and its starting point. ``python benchmarks/teng.py
heat`` runs it on seeds 0, 1, 2 (the older settings: ``--width 20 --depth 5 --points 40
--dt 0.01 --first-iterations 7 --iterations 5 --seeds 0 --schemes heun euler``).

Measured (shared 2-core CPU, torch 1 thread, float64; CPU = process time of the initial fit
plus the stepping):
  Allen-Cahn, ``python benchmarks/teng.py allen-cahn`` with the recipe above (at most 30 + 30
  iterations, stall 0.01; otherwise as below; commit 1022e62; load 7 to 9, seeds 0 and 1 in
  one process, seed 2 in a second one started beside it, ``--seeds 2``, to finish before the
  session's end):
    seed 0: 8.98e-5 (initial fit 8.8e-6), CPU 30.9 + 222.2 = 253 s (wall 1,167 s); 51.1
      fit iterations a step on average (rejected ones included), 60 at most
    seed 1: 9.69e-5 (initial fit 4.0e-6), CPU 20.9 + 176.2 = 197 s (wall 818 s); 49.9
    seed 2: 7.42e-5 (initial fit 4.7e-6), CPU 23.0 + 173.6 = 197 s (wall 792 s); 50.6
  Target 1e-3 in 10 min: met by all three seeds, 10 to 13 times under it, in at most 253 s of
  CPU (plus 4.4 s for the reference). Heun's own error at this dt is 6.7e-5 (above): the
  remaining error is now mostly the time integrator's. The stall rule rarely fires (about 50
  of the 60 iterations run); the error still grows over time (seed 0: 2.2e-5 at t = 0.1,
  1.3e-4 at t = 1).
  Before, with the paper's 7 + 5 iterations (TENG-Heun, width 20, depth 3, 501
  parameters, 1,024 quadrature points, dt 0.005, 7 + 5 iterations per step, 1,000 initial
  Levenberg-Marquardt iterations; reference: 1,024-mode ETDRK4, floor about 2e-6):
    seed 0: 1.04e-3 (initial fit 8.8e-6), CPU 22.8 + 50.0 = 72.8 s (wall 847 s)
    seed 1: 2.99e-4 (initial fit 4.0e-6), CPU 20.6 + 48.7 = 69.3 s (wall 437 s)
    seed 2: 5.20e-4 (initial fit 4.7e-6), CPU 20.9 + 50.2 = 71.1 s (wall 358 s)
  Target 1e-3 in 10 min: met by seeds 1 and 2, missed by seed 0 (1.04e-3); all three in
  about 70 s of CPU. The error grows over time in every seed (seed 0: 8.6e-5 at t = 0.1,
  2.2e-3 at t = 1), so it comes from the stepping, not the initial fit.
  2D heat with the recipe above, ``python benchmarks/teng.py heat`` (TENG-Heun, horizon 1,
  11 evaluation times; 609 parameters, 32 x 32 points, dt 0.005, 4 + 8 iterations, 1,500
  initial iterations; load about 6; seed 0 run alone before the recipe was committed, seeds
  1 and 2 by ``--seeds 1 2`` after):
    seed 0: 7.75e-6 (initial 4.3e-6), CPU 45.5 + 73.0 = 118.5 s (wall 226 s)
    seed 1: 3.27e-5 (initial 7.3e-6), CPU 42.0 + 64.4 = 106.4 s (wall 228 s)
    seed 2: 2.92e-5 (initial 4.3e-6), CPU 44.5 + 69.6 = 114.1 s (wall 303 s)
  Target 1e-5 in 2 min: met by seed 0 only. Seeds 1 and 2 jump to 2.6e-5 / 2.2e-5 by
  t = 0.1 and then stay flat. Why (``benchmarks/teng_fit_residuals.py --seed 1 --width 16
  --depth 4 --points 32 --dt 0.005 --it1 4 --it2 8 --steps 20``): in steps 2-5 seed 1's
  stage-2 fits are still falling about 20 % an iteration when their 8 iterations end (at
  4.3e-6 to 4.5e-6 of the target, Heun's own one-step error being 1.4e-7), and the error
  grows 7.0e-6 -> 1.8e-5 in those four steps; with 4 + 30 iterations (same command,
  ``--it2 30``) the t = 0.1 error is 9.9e-6 instead of 2.6e-5, but the stepping then costs
  about 1 s of CPU a step (20.7 s for 20 steps), about 250 s in all with the initial fit:
  twice the 2-minute budget on this CPU. The paper's 7 + 5 on seed 0 (same net and dt):
  1.18e-5 (CPU 42.6 + 67.7 s), against 7.75e-6 with 4 + 8.
  Not in the library yet, measured with the diagnostic (same command, 20 steps, ``--damping
  stage``: one Levenberg-Marquardt damping per Heun stage, stage 2's carried from the
  previous step's stage 2 instead of from stage 1's end): t = 0.1 error 1.67e-5 (seed 1) and
  1.10e-5 (seed 2), against 2.59e-5 and 2.16e-5 with the damping carried through; stage-2
  rejections 34 and 36 of 160, against 49 and 44; same CPU. It helps 1.5-2x, perhaps not
  enough for seed 1. It is now ``teng(..., damping="stage")``; the second recipe, committed
  before its run, is the first one with it: ``python benchmarks/teng.py heat --damping
  stage`` (seeds 0, 1, 2), load about 3 (wall close to CPU):
    seed 0: 4.99e-6 (initial 4.3e-6), CPU 39.8 + 55.5 = 95.3 s (wall 116 s)
    seed 1: 1.42e-5 (initial 7.3e-6), CPU 37.3 + 57.9 = 95.2 s (wall 101 s)
    seed 2: 1.02e-5 (initial 4.3e-6), CPU 38.3 + 59.1 = 97.4 s (wall 149 s)
  Target 1e-5 in 2 min: met by seed 0, missed by seed 2 by 2 % and by seed 1 (1.42e-5, its
  jump at t = 0.1 now 1.7e-5 instead of 2.6e-5). A third recipe, chosen after seeing these
  (on the same seeds, so weaker evidence) and committed before its run, spends the ~20 s
  of CPU left on stage 2: ``--damping stage --iterations 10`` (4 + 10), load 4.5 to 5.5:
    seed 0: 3.39e-6 (initial 4.3e-6), CPU 41.9 + 81.6 = 123.5 s (wall 187 s)
    seed 1: 8.76e-6 (initial 7.3e-6), CPU 43.2 + 70.9 = 114.1 s (wall 131 s)
    seed 2: 3.59e-6 (initial 4.3e-6), CPU 43.1 + 70.0 = 113.1 s (wall 117 s)
  Error under 1e-5 on all three seeds; the 2-minute limit met by seeds 1 and 2 and missed by
  seed 0 by 3.5 s. Process CPU time is not load-free on this machine: the same 12
  iterations a step took 73 s of stepping CPU at load ~6 and 55 s at load ~3 (seed 0,
  recipes 1 and 2), so the seed-0 overrun is within that spread; on an idle machine the
  recipe should fit, not measured here.
  Recipe 3 on the idle machine (lead, after the merge, load 1.0 to 1.8; the Gram matrix now by
  ``?syrk``, so the numbers differ from the above in the last digits; same command), seeds 0, 1,
  2 and, as a check on seeds not seen when the recipe was chosen, 3, 4, 5 (seeds 3 and 4 ran
  side by side): 3.22e-6, 8.38e-6, 7.50e-6, 5.22e-6, 3.59e-6, 2.74e-6, CPU (initial fit +
  stepping) 38.6 + 62.4 = 101.0, 34.8 + 59.4 = 94.2, 38.0 + 59.0 = 97.0, 37.5 + 65.7 = 103.2,
  37.3 + 70.2 = 107.5, 40.2 + 59.4 = 99.6 s. Target 1e-5 in 2 min: met on all six seeds.
  Before (horizon 1, 11 evaluation times on a 48 x 48 grid; width 20, depth 5, 1,341
  parameters, 40 x 40 quadrature, dt 0.01, 7 + 5 iterations; seed 0): initial fit 2.2e-6
  (CPU 251 s, 1,500 iterations); TENG-Heun 2.95e-5 (stepping
  CPU 193 s, wall 492 s; 2.7e-5 already at t = 0.1, then flat at 3.2e-5 to 3.4e-5), against
  the Heun integrator's own 6.6e-6 at this dt (``heat2d_time_error``). TENG-Euler 9.81e-4
  (stepping CPU 132 s, wall 308 s), at its integrator's 9.58e-4: Euler needs dt 1e-4
  (10,000 steps) for 1e-5. Target 1e-5 in 2 min: not met (Heun's error 3x the target; CPU
  444 s with the initial fit, 193 s without).
  The paper's own setting is not a way out: the authors' released configuration is TENG-Heun
  at dt 0.005 (800 steps to t = 4; 7 + 5 iterations per step, each on a random subset of
  1,536 parameters in a step's first iteration and 1,024 in the others; 65,536 samples), and
  Heun's own error (``heat2d_time_error``, horizon 1)
  is 6.6e-6 at dt 0.01 and 1.6e-6 at dt 0.005: already below 1e-5 at the dt measured above,
  so the 2.95e-5 (4.5x the integrator's error, reached by t = 0.1) comes from the per-step
  fits, not the time integrator; halving dt would also double the 193 s of stepping (not
  re-run).
  Where the excess comes from (``benchmarks/teng_fit_residuals.py``, the same setting, 10
  steps): each step's final (stage-2) fit ends 1.2e-6 to 1.0e-5 of the solution's norm from
  its target, against Heun's own error of about 1.1e-6 after one step; the error grows by
  about 2e-6 a step (2.21e-6 at t = 0 to 2.74e-5 at t = 0.1), on and off the quadrature grid
  alike (40 x 40 points resolve the network: the initial error is 2.21e-6 on both), and 1 or 2
  of each stage's iterations are rejected Levenberg-Marquardt steps. A better initial fit
  cannot remove it (2.5e-5 is added in 10 steps); on a 361-parameter network 20 + 20
  iterations cut the added error about 3x but flatten at 1e-6 to 2e-6 a step.
  Before the gain-ratio damping rule (same command, the keep-if-lower rule): width 20 seed 0
  1.02e-3 (initial fit 6.6e-5, 73 s CPU; 11 evaluation times, 512-mode reference); width 24
  seed 0 1.16e-3 (initial 1.1e-4, 122 s CPU) and seed 1 1.08e-3 (initial 1.3e-4); that run
  was stopped.

Usage:
    python benchmarks/teng.py heat [--seeds 0 1 2] [--horizon 1]  (recipe 3: 4 + 10, damping
        per stage; recipe 1: --iterations 8 --damping carry)
    python benchmarks/teng.py allen-cahn [--seeds 0 1 2]  (30 + 30 maxima, stall 0.01)
    python benchmarks/teng.py allen-cahn --iterations 5 --first-iterations 7 --stall -1
        (the paper's fixed 7 + 5; a negative stall means none)
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from trainlab.pinn.chen2024_teng import fit_initial, teng, teng_network
from trainlab.pinn.problems import build_problem
from trainlab.pinn.problems._problem import tensor_grid


class Clock:
    """Process CPU and wall seconds since construction."""

    def __init__(self) -> None:
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def __str__(self) -> str:
        return (f"cpu {time.process_time() - self.cpu:.1f} s, "
                f"wall {time.perf_counter() - self.wall:.1f} s")


def fitted_network(problem, args, seed: int):
    """TENG's network fitted to the problem's initial condition on the quadrature grid;
    returns ``(network, fit residual, clock text)``."""
    periods = tuple(problem.periodic[i] for i in range(1, problem.dim))
    net = teng_network(periods, args.width, args.depth, torch.Generator().manual_seed(seed))
    axes = [torch.arange(args.points, dtype=torch.float64) * (p / args.points) + lo
            for p, lo in zip(periods, problem.lower[1:])]
    x = tensor_grid(*axes)
    zero = torch.zeros(len(x), 1, dtype=x.dtype)
    clock = Clock()
    res = fit_initial(net, x, problem.reference(torch.cat([zero, x], 1))[:, 0],
                      args.initial_iterations, tol=args.tol)
    return net, res, str(clock)


def run(problem, args, seed: int, schemes: tuple[str, ...]) -> None:
    net, res, fit_time = fitted_network(problem, args, seed)
    print(f"seed {seed}: initial fit, relative residual {res:.2e} ({fit_time})", flush=True)
    for scheme in schemes:
        clock = Clock()
        out = teng(problem, copy.deepcopy(net), scheme=scheme, dt=args.dt,
                   iterations=args.iterations, first_iterations=args.first_iterations,
                   points=args.points, initial_iterations=0, damping=args.damping,
                   stall=args.stall if args.stall is None or args.stall >= 0 else None)
        its = [sum(c) for c in out.fit_iterations]
        errs = " ".join(f"{e:.1e}" for e in out.rel_l2[:: max(1, len(out.rel_l2) // 10)])
        print(f"seed {seed}: TENG-{scheme} space-time rel L2 {out.space_time_rel_l2:.2e} "
              f"(initial {out.initial_error:.2e}), stepping {clock}, "
              f"{out.config['parameters']} parameters; fit iterations per step mean "
              f"{sum(its) / max(len(its), 1):.1f} max {max(its, default=0)}; rel L2 over "
              f"time: {errs}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", choices=["heat", "allen-cahn"])
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--schemes", nargs="+", default=None)
    parser.add_argument("--dt", type=float, default=None)
    parser.add_argument("--horizon", type=float, default=1.0, help="heat only")
    parser.add_argument("--points", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--depth", type=int, default=None)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--first-iterations", type=int, default=None)
    parser.add_argument("--stall", type=float, default=None,
                        help="stop each fit when 4 iterations lower it by less than this "
                             "fraction (the iteration counts are then maxima)")
    parser.add_argument("--initial-iterations", type=int, default=None)
    parser.add_argument("--tol", type=float, default=1e-12)
    parser.add_argument("--damping", choices=["carry", "stage"], default=None,
                        help="one damping state through both Heun stages, or one per stage "
                             "(default: the problem's recipe)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.problem == "heat":
        defaults = {"seeds": [0, 1, 2], "schemes": ["heun"], "dt": 0.005, "points": 32,
                    "width": 16, "depth": 4, "initial_iterations": 1500, "iterations": 10,
                    "first_iterations": 4, "damping": "stage"}  # recipe 3 (docstring)
        problem = build_problem("heat-2d", horizon=args.horizon, grid_t=11)
    else:
        defaults = {"seeds": [0, 1, 2], "schemes": ["heun"], "dt": 0.005, "points": 1024,
                    "width": 20, "depth": 3, "initial_iterations": 1000, "iterations": 30,
                    "first_iterations": 30, "stall": 0.01, "damping": "carry"}
        problem = build_problem("allen-cahn")
        clock = Clock()
        problem.reference(problem.grid[:1])
        print(f"Allen-Cahn reference ({problem.params}): {clock}", flush=True)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    print(f"{args.problem}: {vars(args)}", flush=True)
    for seed in args.seeds:
        run(problem, args, seed, tuple(args.schemes))


if __name__ == "__main__":
    main()
