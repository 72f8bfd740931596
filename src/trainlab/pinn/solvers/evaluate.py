"""Train a learned solver on a family's training split and compare it with baselines in
iterations to a relative residual on the held-out split.

Every method solves the same held-out systems with the same right-hand sides; iterations are
counted to ``||b - A x|| <= rtol ||b||`` (1e-8 by default), times are wall-clock seconds of the
preconditioner setup and of the iterations, on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trainlab.errors import ConfigError, check_range
from trainlab.pinn.solvers._method import SOLVERS, build_solver
from trainlab.pinn.solvers.poisson_family import PoissonFamily

BASELINES = ("cg", "jacobi", "ic0", "amg")


@dataclass(frozen=True)
class MethodResult:
    """One method on the held-out systems: per-system iterations, convergence, setup and
    solve seconds, and the residual history of the first system."""

    name: str
    iterations: tuple[int, ...]
    converged: tuple[bool, ...]
    setup_seconds: tuple[float, ...]
    solve_seconds: tuple[float, ...]
    residuals: tuple[float, ...]
    learned: bool = False
    papers: tuple[int, ...] = ()

    def row(self) -> dict[str, Any]:
        it = np.array(self.iterations, dtype=float)
        return {"method": self.name, "papers": list(self.papers),
                "iterations_mean": float(it.mean()), "iterations_std": float(it.std()),
                "iterations_min": int(it.min()), "iterations_max": int(it.max()),
                "converged": f"{sum(self.converged)}/{len(self.converged)}",
                "setup_s": float(np.mean(self.setup_seconds)),
                "solve_s": float(np.mean(self.solve_seconds))}


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare`."""

    family: dict[str, Any]
    method: str
    params: dict[str, Any]
    train: int
    test: int
    rtol: float
    seed: int
    results: tuple[MethodResult, ...]
    training: dict[str, Any] = field(default_factory=dict)

    def result(self, name: str) -> MethodResult:
        return next(r for r in self.results if r.name == name)

    def ratio(self, baseline: str = "jacobi") -> float | None:
        """Mean iterations of ``baseline`` over mean iterations of the learned method (the
        issue's target: >= 2 against Jacobi); None if either is absent or did not converge
        on every held-out system."""
        names = {r.name for r in self.results}
        if baseline not in names or self.method not in names:
            return None
        if not (all(self.result(baseline).converged) and all(self.result(self.method).converged)):
            return None                  # an iteration cap is not an iteration count
        return (float(np.mean(self.result(baseline).iterations))
                / float(np.mean(self.result(self.method).iterations)))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "rtol": self.rtol, "train": self.train,
                               "test": self.test, "rows": [r.row() for r in self.results]}
        for base in BASELINES:
            ratio = self.ratio(base)
            if ratio is not None and base != self.method:
                out[f"ratio_vs_{base}"] = ratio
        if self.training:
            out["train_seconds"] = self.training.get("seconds")
            losses = self.training.get("loss") or [float("nan")]
            out["final_train_loss"] = losses[-1]
        return out


def run_method(name: str, solver, test: list, rtol: float, maxiter: int | None
               ) -> MethodResult:
    """Solve every held-out system with ``solver``."""
    its, conv, setup, secs, hist = [], [], [], [], ()
    for k, inst in enumerate(test):
        res = solver.solve(inst.A, inst.b, rtol=rtol, maxiter=maxiter)
        its.append(res.iterations)
        conv.append(res.converged)
        setup.append(solver.setup_seconds)
        secs.append(res.seconds)
        if k == 0:
            hist = tuple(float(v) for v in res.residuals)
    entry = SOLVERS.entry(name)
    return MethodResult(name, tuple(its), tuple(conv), tuple(setup), tuple(secs), hist,
                        entry.info.learned, entry.papers)


def compare(method: str = "neural-pcg", *, family: PoissonFamily | None = None,
            train: int = 16, test: int = 8, baselines: tuple[str, ...] = BASELINES,
            rtol: float = 1e-8, maxiter: int | None = None, seed: int = 0,
            params: dict[str, Any] | None = None) -> Comparison:
    """Fit ``method`` on ``train`` family instances, then solve ``test`` held-out instances
    with it and with each baseline.

    Args:
        method: a solver name (``trainlab list solvers``).
        family: the problem family (default: 64x64 lognormal, seed ``seed``).
        train, test: instances in each split (disjoint seeds).
        baselines: other solver names to run on the same systems.
        rtol: relative residual to reach.
        maxiter: iteration cap per solve (default ``10 n``).
        seed: seeds the training (network init, data order) through a generator.
        params: the method's parameters (e.g. ``{"steps": 300}``).

    Returns:
        A :class:`Comparison` (the method first, then the baselines in order).
    """
    owner = "pinn solvers"
    check_range("train", train, low=1, owner=owner)
    check_range("test", test, low=1, owner=owner)
    check_range("rtol", rtol, low=0.0, high=1.0, low_open=True, high_open=True, owner=owner)
    if maxiter is not None:
        check_range("maxiter", maxiter, low=1, owner=owner)
    for name in (method, *baselines):
        entry = SOLVERS.entry(name)
        if entry.info.family != "poisson-2d":
            raise ConfigError(f"solver {name!r} works on the {entry.info.family} family, not "
                              "on Poisson systems; run `trainlab pinn neural-solver`")
    family = family or PoissonFamily(seed=seed)
    params = dict(params or {})
    solver = build_solver(method, **params)
    gen = torch.Generator().manual_seed(seed)
    training = solver.fit(family.train(train), generator=gen) if solver.learned else {}
    held_out = family.test(test)
    names = [method] + [b for b in baselines if b != method]
    results = []
    for name in names:
        s = solver if name == method else build_solver(name)
        results.append(run_method(name, s, held_out, rtol, maxiter))
    fam = {k: getattr(family, k) for k in ("n", "kind", "sigma", "length", "blocks",
                                           "contrast", "seed")}
    return Comparison(fam, method, params, train, test, rtol, seed, tuple(results), training)
