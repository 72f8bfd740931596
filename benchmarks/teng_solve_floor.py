"""Is TENG's per-step fit floor on heat-2d a numerical artefact of the normal equations?
(papers.md row 7, issue 13.)

``natural_gradient_fit`` solves each damped step from :math:`J^\\top J` by Cholesky, which
squares :math:`J`'s condition number. This script runs the same TENG-Heun steps from the same
fitted network twice: once with that solve, once with the same Levenberg-Marquardt step and
the same damping rule computed from the thin SVD of :math:`J` itself,
:math:`\\delta = V\\,\\mathrm{diag}(\\sigma / (\\sigma^2 + \\mu))\\,U^\\top r` (no squaring),
and prints each stage's residual history.

Measured (shared 2-core CPU, 1 thread; width 12, depth 4, 361 parameters, 24 x 24 quadrature,
1,500 initial iterations, dt 0.01, 40 + 40 iterations, 3 steps;
``python benchmarks/teng_solve_floor.py``): both solves give the same residual histories to
the printed digits (stage 2 ends at 1.66e-6, 1.54e-6, 1.28e-6 of the target in steps 1-3;
error 8.93e-6, 8.71e-6, 8.66e-6): the floor is not the normal equations' rounding. CPU 3.6 s
(Cholesky) against 10.1 s (SVD).

Usage: python benchmarks/teng_solve_floor.py [--width 12 --depth 4 --points 24 --init 1500
    --iterations 40 --steps 3]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from trainlab.optim.engd import output_jacobian
from trainlab.pinn.chen2024_teng import (
    _assign,
    _flat,
    _params,
    _values,
    fit_initial,
    natural_gradient_fit,
    nielsen_update,
    spatial_operator,
    teng_network,
)
from trainlab.pinn.problems import build_problem
from trainlab.pinn.problems._problem import tensor_grid


def svd_fit(net, x, target, iterations: int, state: dict, hist: list[float]) -> None:
    """``natural_gradient_fit``'s damped iterations (same damping and Nielsen rule), each
    step solved from the SVD of J instead of Cholesky of J^T J."""
    norm = float(target.norm())
    res, svd = _values(net, x) - target, None
    for _ in range(iterations):
        before = _flat(net)
        if svd is None:
            jac = output_jacobian(net, _params(net), x)[:, 0, :]
            u, s, vh = torch.linalg.svd(jac, full_matrices=False)
            svd = (s, vh, u.T @ res)
        s, vh, b = svd
        nu = state.get("nu", 1e-8)
        coef = s * b / (s * s + nu * float((s * s).sum()) / len(s))
        _assign(net, before - vh.T @ coef)
        new = _values(net, x) - target
        predicted = float((b * b - (b - s * coef) ** 2).sum())
        gain = (float(res @ res) - float(new @ new)) / predicted if predicted > 0 else -1.0
        if nielsen_update(state, nu, gain):
            res, svd = new, None
        else:
            _assign(net, before)
        hist.append(float(res.norm()) / norm)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in (("width", 12), ("depth", 4), ("points", 24), ("init", 1500),
                        ("iterations", 40), ("steps", 3)):
        p.add_argument(f"--{name}", type=int, default=value)
    p.add_argument("--dt", type=float, default=0.01)
    a = p.parse_args()
    torch.set_num_threads(1)
    prob = build_problem("heat-2d", horizon=1.0, grid_t=11)
    period = 2 * math.pi
    axis = torch.arange(a.points, dtype=torch.float64) * (period / a.points)
    x = tensor_grid(axis, axis)

    def ref(t: float) -> torch.Tensor:
        tt = torch.full((len(x), 1), t, dtype=torch.float64)
        return prob.reference(torch.cat([tt, x], 1))[:, 0]

    net = teng_network((period, period), a.width, a.depth, torch.Generator().manual_seed(0))
    fit_initial(net, x, ref(0.0), a.init)
    theta0 = _flat(net).clone()
    rhs = spatial_operator(prob)
    for method in ("cholesky", "svd"):
        _assign(net, theta0.clone())
        state: dict = {}
        clock = time.process_time()
        for n in range(a.steps):
            t = n * a.dt
            u0, f0 = _values(net, x), rhs(net, x, t)
            hists = []
            for stage in (0, 1):
                f = f0 if stage == 0 else (f0 + rhs(net, x, t + a.dt)) / 2
                hist: list[float] = []
                if method == "cholesky":
                    natural_gradient_fit(net, x, u0 + a.dt * f, a.iterations, state=state,
                                         history=hist)
                else:
                    svd_fit(net, x, u0 + a.dt * f, a.iterations, state, hist)
                hists.append(" ".join(f"{v:.1e}" for v in hist[:: max(1, len(hist) // 8)])
                             + f" -> {hist[-1]:.2e}")
            err = float((_values(net, x) - ref(t + a.dt)).norm() / ref(t + a.dt).norm())
            print(f"{method} step {n + 1}: stage 1 {hists[0]} | stage 2 {hists[1]} | "
                  f"error {err:.2e}", flush=True)
        print(f"{method}: cpu {time.process_time() - clock:.1f} s", flush=True)


if __name__ == "__main__":
    main()
