"""Per-step diagnostics of TENG-Heun on heat-2d and Allen-Cahn (papers.md row 7, issue 13):
where the space-time error above Heun's own comes from.

Per time step it prints the relative fit residual :math:`\\|u_\\theta - \\hat u\\| / \\|\\hat u\\|`
at the start of each Heun stage (first value) and after each of its natural-gradient
iterations (a repeated value is a rejected Levenberg-Marquardt step), the final stage's
absolute residual over the reference's norm (the error the fit adds in this step), the
damping :math:`\\nu` each stage starts with, and the relative L2 error against the
reference on the quadrature grid and on a 97-point-per-axis grid off it.

Measured (shared 2-core CPU, torch 1 thread, float64; heat-2d, dt 0.01, 10 steps to t = 0.1).
Heun's own error (``heat2d_time_error``, 12 modes) is about 1.1e-6 after the first step and
about 6e-6 at t = 0.1.
  The benchmark's setting (width 20, depth 5, 1,341 parameters, 40 x 40 quadrature, 1,500
  initial iterations, 7 + 5 iterations; default arguments): initial error 2.21e-6 on and off
  the grid (the quadrature resolves the network); stage 2 ends at 1.0e-5 of the solution's
  norm in step 1 and 1.2e-6 to 5.0e-6 in steps 2-10; every step's stage 2 begins 3.7e-5 to
  8.4e-5 from its target with 1 or 2 rejected iterations (its damping carried on from stage
  1, 1e-9 to 3e-8), and stage 1 has 1 or 2 rejections among its 7; the error grows by about
  2e-6 a step, 1.02e-5 at t = 0.01 to 2.74e-5 at t = 0.1 (off the grid the same), as in
  ``benchmarks/teng.py`` (2.7e-5). CPU 335 s, 311 s of it the initial fit.
  Width 12, depth 4, 361 parameters, 24 x 24 quadrature, 1,500 initial iterations:
  7 + 5 iterations: initial error 9.5e-6 (off-grid 2.3e-5); stage 2 ends at 1.7e-6 to 4.1e-6
  per step; error at t = 0.1 1.71e-5 (off-grid 1.97e-5), 28 s CPU. 20 + 20 iterations: stage
  2 flattens at 1.0e-6 to 2.1e-6; t = 0.1 error 1.18e-5 (off-grid 1.38e-5), 32 s CPU. With
  300 initial iterations (initial error 9.5e-5, 7 + 5): 6.4e-5 at t = 0.1, falling (the
  initial error decays, the added one is below it). 48 x 48 quadrature (1,500 initial
  iterations, 7 + 5): initial 1.06e-5 on and off the grid, per-step residual 3.0e-6 to 1.2e-5,
  4.19e-5 at t = 0.1.
  Why stage 2 starts with rejected steps, and whether the fit or the step sets the floor (the
  361-parameter net, 24 x 24, seed 0, 10 steps; error off the grid, steps 1-10 together; the
  damping variants are ``--damping``):
    7 + 5, damping carried through both stages (TENG's): 1.75e-5; rejected iterations 16 of
      70 in stage 1, 24 of 50 in stage 2. Stage 2 starts 5.4e-5 to 7.6e-5 from its new target
      with the damping that the end of stage 1 drove down to 1e-10 to 2e-9 (each good step
      divides it by up to 3); its first iteration is rejected in 5 of the 10 steps, its
      second in 3 (one accepted step then takes it to 3e-6 to 1e-5).
    7 + 5, one damping per stage (stage 2's carried from the previous step's stage 2, 2e-10
      to 1e-8 at its start): 1.55e-5; rejections 20 and 10; stage 2's first iteration
      rejected in 2 of 10 steps.
    7 + 5, damping reset to 1e-8 at every stage: 2.12e-5; rejections 5 and 13 (these two
      counted from each stage's second iteration): more damping at the start does not
      remove them.
    20 + 20 carried: 1.33e-5 (rejections 10 and 29, from the second iteration); 20 + 20 per
      stage: 1.31e-5 (41, 26).
    So warm-starting stage 2's damping from the previous step's stage 2 halves its rejections
    at 7 + 5 and gains 12 %; with 20 iterations the fit reaches the same floor either way.
    The floor is not the normal equations' rounding (``benchmarks/teng_solve_floor.py``: the
    same steps solved from the SVD of J give the same residuals), and after the first 2 to 5
    accepted steps of stage 2 (6e-5 -> 2e-6 to 4e-6) the residual creeps down about 1 % an
    iteration (20 + 20, step 10: 4.1e-5, 4.1e-6, 2.1e-6, 1.4e-6, then 9.5e-7 at iteration
    20).
    The floor shrinks with dt (20 + 20, ``--cache``d initial fit): the final fit residual per
    step is 1.7e-6 to 2.1e-6 at dt 0.01 (Heun's own one-step error 1.1e-6), 4.0e-7 to 9.2e-7
    at dt 0.005 (Heun's 1.4e-7), 1.8e-7 to 2.2e-7 at dt 0.0025 (Heun's 1.8e-8): about dt^2
    from 0.01 to 0.005, flatter below, while Heun's falls as dt^3 -- so a smaller dt lowers
    the fits' error but never puts it well below Heun's. The error at t = 0.03 is 9.24e-6,
    7.90e-6, 7.71e-6 (dt 0.01, 0.005, 0.0025; on the grid): this small net's own initial
    error (9.5e-6 on the grid, 2.3e-5 off it) dominates it. Stepping CPU 3.4 s, 4.8 s, 8.9 s.
    A larger net does not lower the floor: width 16, depth 4, 609 parameters, 32 x 32
    quadrature, 20 + 20, dt 0.01 (``--width 16 --depth 4 --points 32 --steps 3``): initial
    error 4.2e-6 on and off the grid (init CPU 40 s), stage 2 ends at 2.5e-6, 1.9e-6, 1.6e-6
    (the 361-parameter net: 2.1e-6, 1.7e-6, 1.8e-6), the error grows by about 1e-6 a step
    (4.6e-6, 5.6e-6, 6.4e-6); 1,341 parameters with 7 + 5 (above): 1.2e-6 to 1.0e-5.
  Allen-Cahn (``--problem allen-cahn``: width 20, depth 3, 501 parameters, 1,024 points, dt
  0.005, seed 5), 30 + 30 iterations, the first 90 steps (stopped for the 3-seed run):
  stage 1 ends 2.7e-5 from its target in step 1, 2.4e-7 in step 10, 1.3e-8 to 1.8e-8 from
  step 20 on; stage 2 ends at 6.8e-6 (step 1), 2.3e-7 (step 10), 1.2e-8 (steps 20, 30); a
  fit reaches its floor in 10 to 25 iterations and then stands still (its steps rejected one
  after another), some stage-1 fits still fall at iteration 30 (step 40: 1e-8 and falling
  20 % an iteration). The error: 9.3e-6 at t = 0.005, 1.1e-5 at t = 0.05, 2.0e-5 at 0.1,
  4.5e-5 at 0.3, 6.9e-5 at 0.45 (1.9 s of CPU a step). With the paper's 7 + 5 (from
  ``benchmarks/teng.py``, seed 0) it was 8.6e-5 at t = 0.1.

Usage:
    python benchmarks/teng_fit_residuals.py [--problem heat-2d] [--width 20 --depth 5
        --points 40 --init 1500] [--it1 7 --it2 5] [--steps 10] [--dt 0.01]
        [--damping carry|stage|reset] [--cache DIR] [--every 1]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from trainlab.pinn.chen2024_teng import (
    _values,
    fit_initial,
    natural_gradient_fit,
    spatial_operator,
    teng_network,
)
from trainlab.pinn.problems import build_problem
from trainlab.pinn.problems._problem import tensor_grid

SETTINGS = {  # the settings of benchmarks/teng.py
    "heat-2d": {"width": 20, "depth": 5, "points": 40, "init": 1500, "dt": 0.01, "steps": 10},
    "allen-cahn": {"width": 20, "depth": 3, "points": 1024, "init": 1000, "dt": 0.005,
                   "steps": 200},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problem", choices=sorted(SETTINGS), default="heat-2d")
    for name in ("width", "depth", "points", "init", "steps"):
        p.add_argument(f"--{name}", type=int, default=None)
    p.add_argument("--dt", type=float, default=None)
    p.add_argument("--it1", type=int, default=7)
    p.add_argument("--it2", type=int, default=5)
    p.add_argument("--damping", choices=["carry", "stage", "reset"], default="carry",
                   help="carry: one damping state through both stages (teng's); stage: one "
                        "per stage, carried from the same stage of the previous step; reset: "
                        "nu = 1e-8 at the start of every stage")
    p.add_argument("--every", type=int, default=1, help="print every n-th step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=None,
                   help="folder to keep the fitted initial network in (reused when its "
                        "settings match; the printed init CPU is then the load's)")
    a = p.parse_args()
    for key, value in SETTINGS[a.problem].items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    torch.set_num_threads(1)
    c0, w0 = time.process_time(), time.perf_counter()
    if a.problem == "heat-2d":
        prob = build_problem("heat-2d", horizon=a.dt * a.steps, grid_t=2)
    else:
        prob = build_problem("allen-cahn")
    periods = tuple(prob.periodic[i] for i in range(1, prob.dim))
    axes = [torch.arange(a.points, dtype=torch.float64) * (q / a.points) + lo
            for q, lo in zip(periods, prob.lower[1:])]
    x = tensor_grid(*axes)
    off = [torch.arange(97, dtype=torch.float64) * (q / 97) + lo + 0.0123
           for q, lo in zip(periods, prob.lower[1:])]
    xf = tensor_grid(*off)  # off the quadrature grid

    def ref(t: float, pts: torch.Tensor) -> torch.Tensor:
        tt = torch.full((len(pts), 1), t, dtype=torch.float64)
        return prob.reference(torch.cat([tt, pts], 1))[:, 0]

    net = teng_network(periods, a.width, a.depth, torch.Generator().manual_seed(a.seed))
    npar = sum(q.numel() for q in net.parameters())
    path = None
    if a.cache:
        path = Path(a.cache) / (f"{a.problem}-w{a.width}-d{a.depth}-p{a.points}-i{a.init}"
                                f"-s{a.seed}.pt")
    if path is not None and path.exists():
        net.load_state_dict(torch.load(path))
    else:
        fit_initial(net, x, ref(0.0, x), a.init)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(net.state_dict(), path)

    def errs(t: float) -> list[float]:
        return [float((_values(net, pts) - ref(t, pts)).norm() / ref(t, pts).norm())
                for pts in (x, xf)]

    e0 = errs(0.0)
    print(f"{vars(a)}\nparams {npar}, points {len(x)}, init fit cpu "
          f"{time.process_time() - c0:.1f}s; t=0 err quad {e0[0]:.2e} off-grid {e0[1]:.2e}",
          flush=True)
    rhs = spatial_operator(prob)
    states: list[dict] = [{}, {}]
    sq = den = 0.0
    rejected = [0, 0]
    c1 = time.process_time()
    for n in range(a.steps):
        t = n * a.dt
        u0, f0 = _values(net, x), rhs(net, x, t)
        hists, nus = [], []
        for stage, its in enumerate((a.it1, a.it2)):
            f = f0 if stage == 0 else (f0 + rhs(net, x, t + a.dt)) / 2
            target = u0 + a.dt * f
            state = states[stage if a.damping == "stage" else 0]
            if a.damping == "reset":
                state.clear()
            nus.append(state.get("nu", 1e-8))
            start = float((_values(net, x) - target).norm() / target.norm())
            hist = [start] + [natural_gradient_fit(net, x, target, 1, state=state)
                              for _ in range(its)]
            rejected[stage] += sum(h == g for h, g in zip(hist[1:], hist))
            hists.append(hist)
        added = float((_values(net, x) - target).norm()) / float(ref(t + a.dt, x).norm())
        eq, ef = errs(t + a.dt)
        r = ref(t + a.dt, xf)
        sq += (float((_values(net, xf) - r).pow(2).sum()))
        den += float(r.pow(2).sum())
        if (n + 1) % a.every == 0 or n == 0:
            print(f"step {n + 1}: stage1 (nu0 {nus[0]:.0e}) "
                  f"{' '.join(f'{h:.1e}' for h in hists[0])} | stage2 (nu0 {nus[1]:.0e}) "
                  f"{' '.join(f'{h:.1e}' for h in hists[1])} | fit res/|u| {added:.2e} | "
                  f"err quad {eq:.2e} off {ef:.2e}", flush=True)
    print(f"off-grid space-time rel L2 (steps 1..{a.steps}) {math.sqrt(sq / den):.2e}; "
          f"rejected iterations: stage 1 {rejected[0]}, stage 2 {rejected[1]}; stepping cpu "
          f"{time.process_time() - c1:.1f}s; total cpu {time.process_time() - c0:.1f}s, "
          f"wall {time.perf_counter() - w0:.1f}s")


if __name__ == "__main__":
    main()
