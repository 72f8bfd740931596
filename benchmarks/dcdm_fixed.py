"""Deep conjugate directions (papers.md row 108) in the paper's setting: one fixed matrix,
held-out right-hand sides; iterations to a relative residual against CG, Jacobi-PCG, IC(0)-PCG
and pyamg's AMG-PCG.

The matrix is the 5-point Dirichlet Poisson matrix on an ``--n`` x ``--n`` grid (a ``sigma = 0``
:class:`~trainlab.pinn.solvers.PoissonFamily`: every instance shares it, only the smooth random
right-hand side differs). The network is trained once per seed on Ritz-vector data of that
matrix (the DCDM defaults: Adam at the paper's 1e-4, batch 10, 256 Ritz vectors, ``--steps``
steps), then every method solves the same ``--test`` held-out right-hand sides to each
``--rtol`` (the paper's test script stops at 1e-4; the issue asks for 1e-8). Iterations count
matrix applications of the outer iteration; DCDM's solve time includes its network on this CPU.

Measured on the shared 2-core CPU (1 thread, load about 12-14), 32x32, 1000 steps (258 and
271 s of training; loss 1.0 -> 0.020), 8 held-out right-hand sides per seed, seeds 0 / 1:
  rtol 1e-4: DCDM 9.9 / 10.1, CG = Jacobi 69.4 / 69.5, IC(0) 22.1 / 22.0, AMG 4.0 / 4.0
  rtol 1e-8: DCDM 23.4 +- 1.3 / 22.9 +- 2.0, CG = Jacobi 101.1 / 100.9, IC(0) 35.8 / 35.9,
             AMG 7.0 / 7.0 (every solve converged)
DCDM's solve takes 0.3-1.1 s against CG's 0.01-0.04 s: the network runs on this CPU in
float32 through PyTorch at every iteration.
64x64, seed 0 (``--n 64 --seeds 0``), the same 1000 steps (1125 s; loss 1.0 -> 0.055):
  rtol 1e-4: DCDM converged on 3/8 (16 iterations each; 5 stalled at 2000), CG 140.6,
             IC(0) 42.4, AMG 5.0
  rtol 1e-8: DCDM converged on 1/8 (83 iterations), CG 203.4, IC(0) 68.2, AMG 8.0
The same network conjugating against every previous direction (``--orthogonalize 10000``,
not the paper's 2; measured with maxiter 600) converges on all 8: 19.4 (16-29) iterations
to 1e-4 and 38.8 (34-46) to 1e-8, against CG's 140.6 and 203.4 and IC(0)'s 42.4 and 68.2.

Usage: python benchmarks/dcdm_fixed.py [--n 32] [--steps 1000] [--seeds 0,1] [--test 8]
       [--rtol 1e-4,1e-8] [--orthogonalize 2,10000] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from trainlab.pinn.solvers import PoissonFamily, build_solver
from trainlab.pinn.solvers.evaluate import BASELINES, run_method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--test", type=int, default=8)
    parser.add_argument("--rtol", default="1e-4,1e-8")
    parser.add_argument("--orthogonalize", default="2",
                        help="comma-separated DCDM orthogonalize values to evaluate the one "
                             "trained network with (paper 2; e.g. 2,10000 for full too)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("trainlab").setLevel(logging.ERROR)    # non-convergence is counted
    rtols = [float(r) for r in args.rtol.split(",")]
    for seed in (int(s) for s in args.seeds.split(",")):
        family = PoissonFamily(n=args.n, sigma=0.0, seed=seed)
        dcdm = build_solver("dcdm", steps=args.steps)
        log = dcdm.fit(family.train(1), generator=torch.Generator().manual_seed(seed))
        print(f"seed {seed}: {args.n}x{args.n} Poisson, {args.steps} Adam steps, "
              f"{log['seconds']:.0f} s, loss {log['loss'][0]:.3f} -> "
              f"{np.mean(log['loss'][-50:]):.3f} (mean of the last 50)", flush=True)
        held_out = family.test(args.test)
        orth = [int(o) for o in args.orthogonalize.split(",")]
        for rtol in rtols:
            for name, o in [("dcdm", o) for o in orth] + [(b, None) for b in BASELINES]:
                solver = dcdm if name == "dcdm" else build_solver(name)
                if o is not None:
                    dcdm.orthogonalize = o
                r = run_method(name, solver, held_out, rtol, 2000).row()
                label = name if o is None else f"dcdm/{o}"
                print(f"  rtol {rtol:.0e} {label:10s} {r['iterations_mean']:6.1f} +- "
                      f"{r['iterations_std']:4.1f} ({r['iterations_min']}-"
                      f"{r['iterations_max']}) conv {r['converged']}  solve "
                      f"{r['solve_s']:.3f} s", flush=True)


if __name__ == "__main__":
    main()
