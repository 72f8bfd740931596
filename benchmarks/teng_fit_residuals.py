"""Per-step diagnostics of TENG-Heun on heat-2d (papers.md row 7, issue 13): where the
space-time error above Heun's own comes from.

Per time step it prints the relative fit residual :math:`\\|u_\\theta - \\hat u\\| / \\|\\hat u\\|`
after every natural-gradient iteration of both Heun stages (a repeated value is a rejected
Levenberg-Marquardt step), the final stage's absolute residual over the reference's norm
(the error the fit adds in this step), the damping :math:`\\nu` carried on, and the relative
L2 error against the series solution on the quadrature grid and on a 97 x 97 grid off it.

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

Usage:
    python benchmarks/teng_fit_residuals.py [--width 20 --depth 5 --points 40 --init 1500]
        [--it1 7 --it2 5] [--steps 10]
"""

from __future__ import annotations

import argparse
import math
import time

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
    fit_initial(net, x, ref(0.0, x), a.init)

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
            hist = [natural_gradient_fit(net, x, target, 1, state=state) for _ in range(its)]
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
