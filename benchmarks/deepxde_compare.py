"""DeepXDE beside trainlab on the same Poisson and Burgers problems: relative L2 error and time.

For each case and seed, two runs on the same PDE, both scored by trainlab's reference on
trainlab's evaluation grid (the relative L2 error of the solution, never the loss):

* ``deepxde``: DeepXDE 1.15 (PyTorch backend, float64, in this process) at the recipe of its
  documented Burgers example (DeepXDE docs, "Burgers equation" demo; Lu et al., "DeepXDE: A
  deep learning library for solving differential equations", SIAM Review 2021): 2540 domain,
  80 boundary and 160 initial points (Poisson: 2540 domain and 80 boundary points), a
  2-[20]*3-1 tanh network with Glorot-normal weights, Adam at lr 1e-3 for 15000 iterations,
  then L-BFGS with DeepXDE's default options (at most 15000 iterations). The trained net is
  evaluated through ``model.predict`` on trainlab's grid (columns reordered: DeepXDE's
  time-dependent geometry puts time last, trainlab puts it first).
* ``trainlab``: the recipe of ``benchmarks/pinn.py`` for the case (ENGD, damped Gauss-Newton,
  on a tanh MLP, for that case's budget, in process CPU time since ``benchmarks/pinn.py``
  judges its targets on CPU time; the numbers below were measured with wall-clock budgets).

Cases: ``poisson-k1`` and ``poisson-k4`` (``-Δu = 2(kπ)² sin(kπx) sin(kπy)`` on the unit square,
zero Dirichlet data; trainlab's ``poisson`` problem) and ``burgers`` (``u_t + u u_x = ν u_xx``,
ν = 0.01/π, ``u(0, x) = -sin(πx)``, ``u(t, ±1) = 0``; trainlab's ``burgers`` problem, Cole-Hopf
reference). ``--quick`` multiplies every iteration count (DeepXDE) and every wall-clock budget
(trainlab) by ``--scale`` (default 0.05 with ``--quick``); the printed table says so.

``--match-time`` gives trainlab, per case and seed, DeepXDE's measured wall time as its
(CPU) budget (the like-for-like comparison when ``--quick`` shrinks trainlab's budgets to
seconds).

Threads are pinned (``--threads``, default 1). Seeds go to ``dde.config.set_random_seed``
(which seeds Python's, NumPy's and torch's global generators: acceptable in a benchmark
script, never in library code) and to trainlab's ``data_seed``/init generator.

Deviations from DeepXDE's example: float64 instead of its float32 default (the issue's
setting); the Poisson cases reuse the Burgers example's counts and network, since DeepXDE
documents no 2D sin(kπx)sin(kπy) example.

Measured on the shared 2-core CPU, 1 thread, load average about 8, seed 0,
``--quick --match-time`` (DeepXDE at 0.05 of its iterations: Adam 750 + L-BFGS <= 750;
trainlab given DeepXDE's wall time):
  poisson-k1  DeepXDE 2.57e-3 in 112 s; trainlab (ENGD, 180 steps) 7.24e-7 in 112 s
              (seeds 1, 2: DeepXDE 5.71e-3, 3.48e-3; trainlab 7.39e-7, 7.69e-7, same times)
  poisson-k4  DeepXDE 2.58    in 122 s; trainlab (ENGD, 111 steps) 1.06e-4 in 122 s
  burgers     DeepXDE 1.41e-1 in  87 s; trainlab (ENGD,  10 steps) 5.87e-1 in  89 s
(relative L2 against trainlab's reference on its grid; the reference floor is 0 for Poisson,
3.6e-16 for Burgers). Scaled-down runs, not DeepXDE's published setting.
At the documented recipe (``--cases burgers``, no scale-down; load average 7.7 at the start,
falling to about 2 at the end, seed 0):
  burgers     DeepXDE 1.65e-3 in 1167 s (Adam 15000 + L-BFGS); trainlab (ENGD, 262 steps)
              8.11e-4 in 600 s
The trainlab Burgers numbers above are the earlier recipe, uniform random collocation
points (``burgers-uniform`` in ``benchmarks/pinn.py`` now); ``burgers`` there is now the same
recipe on scrambled Sobol points (1e-3 in 155 to 200 CPU s on seeds 0 to 5), not re-run
here.

Usage: python benchmarks/deepxde_compare.py [--cases poisson-k1,poisson-k4,burgers]
       [--seeds 0] [--quick] [--scale 0.05] [--threads 1] [--skip-trainlab]
       [--match-time]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DDE_BACKEND", "pytorch")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from trainlab.pinn.problems import build_problem  # noqa: E402

NU = 0.01 / math.pi
# DeepXDE's documented Burgers recipe (counts, network, optimiser schedule)
RECIPE = {"num_domain": 2540, "num_boundary": 80, "num_initial": 160, "layers": [2] + [20] * 3
          + [1], "activation": "tanh", "initializer": "Glorot normal", "lr": 1e-3,
          "adam_iterations": 15000, "lbfgs_maxiter": 15000}
CASES = {"poisson-k1": ("poisson", {"k": 1}), "poisson-k4": ("poisson", {"k": 4}),
         "burgers": ("burgers", {})}


def import_deepxde():
    """DeepXDE on the PyTorch backend, float64, on the CPU like trainlab's runs."""
    if os.environ["DDE_BACKEND"] != "pytorch":
        raise RuntimeError(f"DDE_BACKEND={os.environ['DDE_BACKEND']!r}; this benchmark needs "
                           "'pytorch'")
    device = torch.empty(0).device  # the default device (get_default_device: torch >= 2.3)
    import deepxde as dde

    if torch.empty(0).device != device:  # its import makes CUDA the default device
        print("DeepXDE made the GPU torch's default device; set back to the CPU")
        torch.set_default_device(None if device.type == "cpu" else device)
    dde.config.set_default_float("float64")
    return dde


def poisson_residual(dde, k: int):
    """DeepXDE's form of trainlab's ``poisson`` PDE: ``-Δu - 2 (kπ)² sin(kπx) sin(kπy)``,
    inputs ``(x, y)``."""
    w = k * math.pi

    def pde(x, u):
        lap = dde.grad.hessian(u, x, i=0, j=0) + dde.grad.hessian(u, x, i=1, j=1)
        return -lap - 2 * w ** 2 * torch.sin(w * x[:, 0:1]) * torch.sin(w * x[:, 1:2])

    return pde


def burgers_residual(dde, nu: float = NU):
    """DeepXDE's form of trainlab's ``burgers`` PDE, inputs ``(x, t)`` (DeepXDE's order)."""

    def pde(x, u):
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_t = dde.grad.jacobian(u, x, i=0, j=1)
        u_xx = dde.grad.hessian(u, x, i=0, j=0)
        return u_t + u * u_x - nu * u_xx

    return pde


def deepxde_data(dde, case: str, params: dict):
    """The DeepXDE data object for a case (geometry, PDE, conditions, collocation counts)."""
    n = {key: RECIPE[key] for key in ("num_domain", "num_boundary", "num_initial")}
    if case == "poisson":
        geom = dde.geometry.Rectangle([0.0, 0.0], [1.0, 1.0])
        bc = dde.icbc.DirichletBC(geom, lambda x: 0.0, lambda _, on_boundary: on_boundary)
        return dde.data.PDE(geom, poisson_residual(dde, params["k"]), bc,
                            num_domain=n["num_domain"], num_boundary=n["num_boundary"])
    geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1.0, 1.0),
                                          dde.geometry.TimeDomain(0.0, 1.0))
    bc = dde.icbc.DirichletBC(geomtime, lambda x: 0.0, lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]),
                     lambda _, on_initial: on_initial)
    return dde.data.TimePDE(geomtime, burgers_residual(dde), [bc, ic],
                            num_domain=n["num_domain"], num_boundary=n["num_boundary"],
                            num_initial=n["num_initial"])


def to_deepxde_order(case: str, x: np.ndarray) -> np.ndarray:
    """trainlab's ``(t, x)`` columns to DeepXDE's ``(x, t)`` for Burgers; Poisson unchanged."""
    return x[:, ::-1].copy() if case == "burgers" else x


def rel_l2(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))


def set_lbfgs_maxiter(dde, maxiter: int) -> None:
    """DeepXDE's L-BFGS iteration cap. ``set_LBFGS_options`` alone leaves the per-call
    counts of the PyTorch backend (``iter_per_step``, ``fun_per_step``, set at import from the
    default 15000) untouched, so a cap below 1000 would still run 1000 iterations; they are
    recomputed here the way DeepXDE computes them at import."""
    dde.optimizers.set_LBFGS_options(maxiter=maxiter)
    opts = dde.optimizers.config.LBFGS_options
    opts["iter_per_step"] = min(1000, maxiter)
    opts["fun_per_step"] = opts["maxfun"] * opts["iter_per_step"] // maxiter


def run_deepxde(name: str, seed: int, scale: float) -> dict:
    dde = import_deepxde()
    case, params = CASES[name]
    problem = build_problem(case, **params)
    dde.config.set_random_seed(seed)
    data = deepxde_data(dde, case, params)
    net = dde.nn.FNN(RECIPE["layers"], RECIPE["activation"], RECIPE["initializer"])
    model = dde.Model(data, net)
    adam = max(1, round(RECIPE["adam_iterations"] * scale))
    lbfgs = max(1, round(RECIPE["lbfgs_maxiter"] * scale))
    set_lbfgs_maxiter(dde, lbfgs)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # DeepXDE's progress lines
        model.compile("adam", lr=RECIPE["lr"])
        model.train(iterations=adam, display_every=1000)
        model.compile("L-BFGS")
        model.train(display_every=1000)
    seconds = time.perf_counter() - start
    grid = problem.grid.numpy()
    pred = model.predict(to_deepxde_order(case, grid))
    ref = problem.reference(problem.grid).numpy()
    return {"error": rel_l2(pred, ref), "seconds": seconds, "floor": problem.error_floor(),
            "work": f"Adam {adam} + L-BFGS <={lbfgs} it"}


def load_pinn_benchmark():
    """``benchmarks/pinn.py`` (trainlab's recipe per case), loaded from its file."""
    path = Path(__file__).with_name("pinn.py")
    spec = importlib.util.spec_from_file_location("bench_pinn", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_pinn"] = module
    spec.loader.exec_module(module)
    return module


def run_trainlab(name: str, seed: int, scale: float, budget: float | None = None) -> dict:
    """trainlab's recipe for ``name``; ``budget`` (CPU seconds) replaces the case's scaled one."""
    pinn = load_pinn_benchmark()
    budget = pinn.CASES[name].budget * scale if budget is None else budget
    r = pinn.run_case(name, seed, budget)
    return {"error": r["error"], "seconds": r["seconds"], "floor": r["floor"],
            "work": f"ENGD {r['steps']} steps ({budget:.0f} s budget)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="poisson-k1,poisson-k4,burgers")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--quick", action="store_true",
                        help="scale iterations and budgets by --scale (default 0.05)")
    parser.add_argument("--scale", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-trainlab", action="store_true")
    parser.add_argument("--match-time", action="store_true",
                        help="give trainlab DeepXDE's wall time of the same case and seed as "
                        "its budget (instead of its own scaled budget)")
    args = parser.parse_args()
    names = args.cases.split(",")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; valid: {', '.join(CASES)}")
    scale = args.scale if args.scale is not None else (0.05 if args.quick else 1.0)
    if not 0 < scale <= 1:
        parser.error(f"--scale must be in (0, 1], got {scale}")
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"threads {args.threads}; seeds {seeds}; float64; load average "
          f"{os.getloadavg()[0]:.1f}")
    if scale < 1:
        print(f"SCALED DOWN: iteration counts (DeepXDE) and wall-clock budgets (trainlab) x "
              f"{scale:g} of the documented recipes; not the published setting")
    print(f"{'case':<12}{'seed':>5}  {'library':<9}{'rel L2':>11}{'seconds':>9}"
          f"{'ref floor':>11}  work")
    for name in names:
        for seed in seeds:
            r = run_deepxde(name, seed, scale)
            rows = [("deepxde", r)]
            if not args.skip_trainlab:
                budget = r["seconds"] if args.match_time else None
                rows.append(("trainlab", run_trainlab(name, seed, scale, budget)))
            for lib, r in rows:
                print(f"{name:<12}{seed:>5}  {lib:<9}{r['error']:>11.2e}{r['seconds']:>9.1f}"
                      f"{r['floor']:>11.1e}  {r['work']}", flush=True)


if __name__ == "__main__":
    main()
