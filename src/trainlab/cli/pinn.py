"""Physics-informed methods that are not training a network on a loss: each action trains
or runs its method, records the result in the run store and writes a report.

`solvers` trains a learned linear solver (papers.md rows 59, 108) on a random-coefficient
Poisson family and compares it, in CG iterations to a relative residual on held-out
coefficients, with plain CG, Jacobi, IC(0) and pyamg's AMG (`trainlab list solvers`);
`--sigma 0` gives one fixed matrix with held-out right-hand sides instead (DCDM's setting).
`neural-solver` trains the physics-informed learned iterative solver of row 4 on the 1-D
Helmholtz family and compares its error after L steps with gradient descent and CG.
`teng` time-steps a network through a periodic evolution problem by TENG-Euler or
TENG-Heun (row 7) and reports its error against the problem's reference.

Example:
    trainlab pinn solvers
    trainlab pinn solvers --method neural-pcg --n 64 --train 16 --test 8 -p steps=300
    trainlab pinn solvers --method dcdm --n 32 --sigma 0 --train 1 --test 8
    trainlab pinn solvers --kind piecewise --baselines jacobi,amg
    trainlab pinn neural-solver --train 200 --epochs 100
    trainlab pinn teng --problem heat-2d --scheme heun --dt 0.05 -p horizon=1
"""

from __future__ import annotations

import argparse
import sys

from trainlab.cli._options import add_json, add_store, open_store, print_json
from trainlab.errors import ConfigError

NAME = "pinn"
HELP = ("physics-informed methods outside training: learned linear solvers (pinn solvers, "
        "pinn neural-solver), TENG time stepping (pinn teng)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("solvers", help="train a learned linear solver; compare it in CG "
                                       "iterations with Jacobi, IC(0) and AMG",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="neural-pcg",
                   help="solver to train and evaluate (`trainlab list solvers`; default "
                        "neural-pcg)")
    p.add_argument("--n", type=int, default=64, help="interior grid nodes per side (default 64)")
    p.add_argument("--kind", default="lognormal",
                   help="coefficient field: lognormal or piecewise (default lognormal)")
    p.add_argument("--sigma", type=float, default=1.0,
                   help="standard deviation of log a for lognormal coefficients (default 1); "
                        "0 gives one fixed matrix (the constant-coefficient Poisson) with "
                        "held-out right-hand sides, the setting of dcdm's paper (row 108)")
    p.add_argument("--train", type=int, default=16, help="training systems (default 16)")
    p.add_argument("--test", type=int, default=8, help="held-out systems (default 8)")
    p.add_argument("--baselines", default="cg,jacobi,ic0,amg",
                   help="comma-separated solvers run beside it (default cg,jacobi,ic0,amg; "
                        "'none' for no baseline)")
    p.add_argument("--rtol", type=float, default=1e-8,
                   help="relative residual to reach (default 1e-8)")
    p.add_argument("--maxiter", type=int, default=None,
                   help="iteration cap per solve (default 10 n^2); a solve that reaches it "
                        "is reported as not converged")
    _add_common(p, seed="seeds the family and the training",
                param="a parameter of the method, e.g. steps=300, lr=1e-3 (repeatable)",
                action=_solvers)
    p = sub.add_parser("neural-solver", help="train the learned iterative solver of papers.md "
                                             "row 4 on 1-D Helmholtz; compare with GD and CG")
    p.add_argument("--train", type=int, default=800, help="training parameter draws (800)")
    p.add_argument("--test", type=int, default=200, help="held-out draws (200)")
    p.add_argument("--epochs", type=int, default=1500, help="Adam epochs (paper 1500)")
    _add_common(p, seed="seeds data, init and batches",
                param="a solver parameter: steps, basis, width, modes, layers, batch, lr, "
                      "inner_lr (repeatable)",
                action=_neural_solver)
    p = sub.add_parser("teng", help="TENG-Euler/Heun time stepping of a network through a "
                                    "periodic evolution problem (papers.md row 7)")
    p.add_argument("--problem", default="heat-2d",
                   help="a periodic evolution problem (`trainlab list problems`; default "
                        "heat-2d)")
    p.add_argument("--scheme", default="heun", help="euler or heun (default heun)")
    p.add_argument("--dt", type=float, default=0.005, help="time step (default 0.005, paper)")
    p.add_argument("--iterations", type=int, default=5,
                   help="natural-gradient iterations per stage (default 5, paper)")
    p.add_argument("--first-iterations", type=int, default=7,
                   help="iterations in each step's first stage (default 7, paper)")
    p.add_argument("--points", type=int, default=32, help="grid points per axis (default 32)")
    p.add_argument("--initial-iterations", type=int, default=500,
                   help="iterations fitting the initial condition (default 500)")
    p.add_argument("--stall", type=float, default=None,
                   help="stop a stage's fit early once 4 iterations lowered its residual by "
                        "less than this fraction (default: off, the fixed counts run)")
    p.add_argument("--damping", default="carry",
                   help="Levenberg-Marquardt damping: carry (one state through both stages, "
                        "default) or stage (one state per Heun stage)")
    p.add_argument("--width", type=int, default=24, help="network width (default 24)")
    p.add_argument("--depth", type=int, default=3, help="network depth (default 3)")
    _add_common(p, seed="seeds the network's initialization",
                param="a parameter of the problem, e.g. horizon=1 (repeatable)",
                action=_teng)


def _add_common(p: argparse.ArgumentParser, *, seed: str, param: str, action) -> None:
    """The options every action shares: seed, ``-p KEY=VALUE``, report, JSON, store."""
    p.add_argument("--seed", type=int, default=0, help=seed)
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help=param)
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    add_json(p)
    add_store(p)
    p.set_defaults(_action=action)


def _params(items: list[str]) -> dict:
    from trainlab.train.config import parse_value

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"-p {item!r}: expected KEY=VALUE, e.g. steps=300")
        out[key.strip()] = parse_value(value)
    return out


def _solvers(args: argparse.Namespace) -> int:
    import torch

    from trainlab.pinn.solvers import SOLVERS, PoissonFamily
    from trainlab.pinn.solvers.evaluate import compare
    from trainlab.pinn.solvers.records import record

    SOLVERS.entry(args.method)                         # unknown names fail before any work
    baselines = () if args.baselines.strip() == "none" else tuple(
        b.strip() for b in args.baselines.split(",") if b.strip())
    for b in baselines:
        SOLVERS.entry(b)
    family = PoissonFamily(n=args.n, kind=args.kind, sigma=args.sigma, seed=args.seed)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    c = compare(args.method, family=family, train=args.train, test=args.test,
                baselines=baselines, rtol=args.rtol, maxiter=args.maxiter, seed=args.seed,
                params=_params(args.param))
    store = open_store(args)
    run_id, report = record(store, c, report=not args.no_report)
    store.close()
    summary = c.summary() | {"run_id": run_id, "report": str(report) if report else None}
    if args.json:
        print_json(summary)
        return 0
    fixed = args.kind == "lognormal" and args.sigma == 0
    print(f"run {run_id}: {c.method} on {args.n}x{args.n} "
          f"{'fixed Poisson matrix' if fixed else args.kind}, {args.train} train / "
          f"{args.test} held-out {'right-hand sides' if fixed else 'systems'}, iterations to "
          f"rtol {args.rtol:g}")
    print(f"{'method':<12} {'iterations':>18} {'range':>11} {'conv':>5} {'setup s':>9} "
          f"{'solve s':>9}")
    for r in summary["rows"]:
        print(f"{r['method']:<12} {r['iterations_mean']:>10.1f} +- {r['iterations_std']:<5.1f}"
              f" {r['iterations_min']:>5}-{r['iterations_max']:<5} {r['converged']:>5} "
              f"{r['setup_s']:>9.3g} {r['solve_s']:>9.3g}")
    for key, value in summary.items():
        if key.startswith("ratio_vs_"):
            print(f"iterations {key.removeprefix('ratio_vs_')} / {c.method}: {value:.2f}")
    if report:
        print(f"report: {report}")
    sys.stdout.flush()
    return 0


def _neural_solver(args: argparse.Namespace) -> int:
    from trainlab.errors import check_range
    from trainlab.pinn.solvers.leboudec2025_neural_solver import (
        NeuralParametricSolver,
        compare_helmholtz,
    )
    from trainlab.pinn.solvers.records import record_helmholtz

    check_range("train", args.train, low=1, owner="pinn neural-solver")
    check_range("test", args.test, low=1, owner="pinn neural-solver")
    params = _params(args.param)
    try:
        solver = NeuralParametricSolver(epochs=args.epochs, **params)
    except TypeError as exc:
        raise ConfigError(f"neural-solver: {exc}") from None
    c = compare_helmholtz(solver, train=args.train, test=args.test, seed=args.seed)
    store = open_store(args)
    config = {"train": args.train, "test": args.test, "epochs": args.epochs,
              "seed": args.seed, "params": params}
    run_id, report = record_helmholtz(store, c, config, report=not args.no_report)
    store.close()
    rows = [{"method": m, "steps": s, "relative_l2": e} for m, s, e in c.rows]
    if args.json:
        print_json({"run_id": run_id, "rows": rows, "report": str(report) if report else None})
        return 0
    print(f"run {run_id}: relative L2 error on {args.test} held-out Helmholtz instances")
    for r in rows:
        print(f"{r['method']:<8} {r['steps']:>5} steps  {r['relative_l2']:.3g}")
    if report:
        print(f"report: {report}")
    return 0


def _teng(args: argparse.Namespace) -> int:
    import torch

    from trainlab.pinn.chen2024_teng import teng
    from trainlab.pinn.problems import PROBLEMS
    from trainlab.pinn.records import record_teng, teng_summary

    PROBLEMS.entry(args.problem)                       # unknown names fail before any work
    result = teng(args.problem, scheme=args.scheme, dt=args.dt, iterations=args.iterations,
                  first_iterations=args.first_iterations, points=args.points,
                  stall=args.stall, damping=args.damping,
                  initial_iterations=args.initial_iterations, width=args.width,
                  depth=args.depth, generator=torch.Generator().manual_seed(args.seed),
                  **_params(args.param))
    store = open_store(args)
    run_id, report = record_teng(store, result, seed=args.seed, report=not args.no_report)
    store.close()
    summary = teng_summary(result) | {"run_id": run_id,
                                      "report": str(report) if report else None}
    if args.json:
        print_json(summary)
        return 0
    print(f"run {run_id}: TENG-{args.scheme} on {args.problem}, dt {args.dt:g}")
    for t, e in zip(result.times, result.rel_l2, strict=True):
        print(f"t = {t:<8g} relative L2 {e:.3g}")
    print(f"space-time relative L2 {result.space_time_rel_l2:.3g} ({result.seconds:.1f} s)")
    if report:
        print(f"report: {report}")
    return 0


def main(args: argparse.Namespace) -> int:
    return args._action(args)
