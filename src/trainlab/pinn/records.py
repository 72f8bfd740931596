"""A TENG time-stepping result recorded in the run store, with an HTML report.

One :func:`~trainlab.pinn.chen2024_teng.teng` call is one run: its config is
``{"kind": "pinn-teng", **result.config, "seed": ...}``, its summary the space-time and
initial errors and the time taken, its metrics the relative L2 error at each evaluation time
(``error/rel_l2``, step = the index of the time) and the relative residual of each step's fit
(``fit/residual``, step = the time step), and its artifact ``report`` the HTML page.
(The learned linear solvers record themselves through :mod:`trainlab.pinn.solvers.records`.)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from trainlab.store import RunStore

RUN_KIND = "pinn-teng"


def teng_summary(result) -> dict:
    """The run summary of a :class:`~trainlab.pinn.chen2024_teng.TengResult`."""
    return {"space_time_rel_l2": result.space_time_rel_l2,
            "initial_error": result.initial_error, "seconds": result.seconds,
            "times": list(result.times), "rel_l2": list(result.rel_l2),
            "steps": len(result.fit_residuals)}


def record_teng(store: RunStore, result, *, seed: int | None = None, report: bool = True
                ) -> tuple[str, Path | None]:
    """Store ``result`` as one completed run (``diverged`` if a fit went non-finite);
    returns ``(run_id, report path or None)``."""
    config = {"kind": RUN_KIND, **result.config, "seed": seed}
    run_id = store.create_run(config, name=f"pinn teng {result.config.get('problem', '')}",
                              seed=seed)
    metrics = [(k, "error/rel_l2", float(v)) for k, v in enumerate(result.rel_l2)]
    metrics += [(k + 1, "fit/residual", float(v)) for k, v in enumerate(result.fit_residuals)]
    store.log_metrics(run_id, metrics)
    path = None
    if report:
        from trainlab.report import plots
        from trainlab.report.page import Page

        cfg = result.config
        page = Page(f"TENG-{cfg.get('scheme', '')} on {cfg.get('problem', '')} "
                    "(papers.md row 7)",
                    f"dt {cfg.get('dt')}, {cfg.get('parameters')} parameters - run {run_id}")
        page.heading("Relative L2 error against the reference")
        page.table(["time", "relative L2"], [[f"{t:g}", f"{e:.3g}"] for t, e in
                                             zip(result.times, result.rel_l2, strict=True)])
        page.text(f"space-time relative L2 {result.space_time_rel_l2:.3g}; initial fit "
                  f"{result.initial_error:.3g}; {result.seconds:.1f} s")
        panels = [("relative L2 error", {"TENG": (np.array(result.times),
                                                  np.array(result.rel_l2))}, True)]
        if result.fit_residuals:
            res = np.array(result.fit_residuals)
            panels.append(("fit residual per step", {"TENG": (np.arange(1, len(res) + 1),
                                                              res)}, True))
        page.figure(plots.curves(panels))
        page.heading("Configuration").table(["key", "value"], list(cfg.items()))
        path = store.artifact_dir(run_id) / "report.html"
        page.write(path)
        store.add_artifact(run_id, "report", path)
    finite = math.isfinite(result.space_time_rel_l2)
    store.set_status(run_id, "completed" if finite else "diverged", teng_summary(result))
    return run_id, path
