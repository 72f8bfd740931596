"""A learned-solver comparison recorded in the run store, with an HTML report.

One :func:`~trainlab.pinn.solvers.evaluate.compare` is one run: its config is
``{"kind": "pinn-solvers", "method": ..., "family": {...}, "params": {...}, ...}``, its summary
the comparison table (:meth:`Comparison.summary`), its metrics the training loss per step
(``train/loss``) and each method's relative residual per iteration on the first held-out
system (``residual/<method>``), and its artifact ``report`` the HTML page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainlab.pinn.solvers.evaluate import Comparison
from trainlab.store import RunStore

RUN_KIND = "pinn-solvers"


def build_page(c: Comparison, run_id: str = ""):
    """The report page: the table, the residual histories and the training loss."""
    from trainlab.report import plots
    from trainlab.report.page import Page

    fam = c.family
    page = Page(f"Learned linear solver: {c.method}",
                f"{fam['n']}x{fam['n']} {fam['kind']} Poisson family, {c.train} training / "
                f"{c.test} held-out systems, rtol {c.rtol:g}" + (f" - run {run_id}"
                                                                 if run_id else ""))
    rows = [[r["method"], ",".join(map(str, r["papers"])) or "-",
             f"{r['iterations_mean']:.1f} +- {r['iterations_std']:.1f}",
             f"{r['iterations_min']}-{r['iterations_max']}", r["converged"],
             f"{r['setup_s']:.3g}", f"{r['solve_s']:.3g}"] for r in c.summary()["rows"]]
    page.heading("Iterations to the relative residual on held-out coefficients")
    page.table(["method", "papers.md rows", "iterations (mean +- sd)", "range", "converged",
                "setup s", "solve s"], rows)
    ratios = {k: v for k, v in c.summary().items() if k.startswith("ratio_vs_")}
    if ratios:
        page.text("Iteration ratios (baseline / learned): "
                  + ", ".join(f"{k.removeprefix('ratio_vs_')} {v:.2f}x"
                              for k, v in ratios.items()))
    panels = [("relative residual, first held-out system",
               {r.name: (np.arange(len(r.residuals)), np.array(r.residuals))
                for r in c.results}, True)]
    if c.training.get("loss"):
        loss = np.array(c.training["loss"])
        panels.append(("training loss", {c.method: (np.arange(len(loss)), loss)}, True))
    page.figure(plots.curves(panels))
    page.heading("Configuration")
    page.table(["key", "value"], [["family", fam], ["params", c.params], ["seed", c.seed],
                                  ["train seconds", c.training.get("seconds", "-")]])
    return page


def record(store: RunStore, c: Comparison, *, report: bool = True) -> tuple[str, Path | None]:
    """Store ``c`` as one completed run; returns ``(run_id, report path or None)``."""
    config = {"kind": RUN_KIND, "method": c.method, "family": c.family, "params": c.params,
              "train": c.train, "test": c.test, "rtol": c.rtol, "seed": c.seed}
    run_id = store.create_run(config, name=f"pinn solvers {c.method}", seed=c.seed)
    metrics = [(k, "train/loss", float(v)) for k, v in enumerate(c.training.get("loss", []))]
    for r in c.results:
        metrics += [(k, f"residual/{r.name}", v) for k, v in enumerate(r.residuals)]
    store.log_metrics(run_id, metrics)
    path = None
    if report:
        path = store.artifact_dir(run_id) / "report.html"
        build_page(c, run_id).write(path)
        store.add_artifact(run_id, "report", path)
    store.set_status(run_id, "completed", c.summary())
    return run_id, path


def record_helmholtz(store: RunStore, c, config: dict, *, report: bool = True
                     ) -> tuple[str, Path | None]:
    """Store a :class:`~trainlab.pinn.solvers.leboudec2025_neural_solver.HelmholtzComparison`
    (papers.md row 4) as one completed run: summary = the error table, metric
    ``train/loss`` = the L1 training loss per epoch, artifact ``report``."""
    from trainlab.report import plots
    from trainlab.report.page import Page

    config = {"kind": "pinn-neural-solver", **config}
    run_id = store.create_run(config, name="pinn neural-solver (row 4)",
                              seed=config.get("seed"))
    losses = c.training.get("loss", [])
    store.log_metrics(run_id, [(k, "train/loss", float(v)) for k, v in enumerate(losses)])
    rows = [{"method": m, "steps": s, "relative_l2": e} for m, s, e in c.rows]
    path = None
    if report:
        page = Page("Learned iterative solver on the 1-D Helmholtz family (papers.md row 4)",
                    f"run {run_id}")
        page.heading("Relative L2 error on held-out parameters")
        page.table(["method", "steps", "relative L2"], [[r["method"], r["steps"],
                                                         f"{r['relative_l2']:.3g}"]
                                                        for r in rows])
        if losses:
            page.figure(plots.curves([("training L1 loss", {"learned": (
                np.arange(len(losses)), np.array(losses))}, True)]))
        page.heading("Configuration").table(["key", "value"], list(config.items()))
        path = store.artifact_dir(run_id) / "report.html"
        page.write(path)
        store.add_artifact(run_id, "report", path)
    store.set_status(run_id, "completed", {"rows": rows,
                                           "train_seconds": c.training.get("seconds")})
    return run_id, path
