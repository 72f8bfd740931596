"""Renderers of an :class:`~trainlab.inspect.inspector.Inspection`: a rich table for the
terminal and an HTML page (:class:`trainlab.report.Page`) with one plot per measure, the
schemes overlaid."""

from __future__ import annotations

import math
from typing import Any

from trainlab.inspect.inspector import Inspection
from trainlab.report import Page

COLUMNS = (("forward_var_ratio", "fwd var out/in"), ("backward_var_ratio", "bwd var in/out"),
           ("jacobian_sv_median", "Jacobian sv median"),
           ("jacobian_sv_log10_spread", "log10 sv max/min"),
           ("guessing_bias", "IGB max class frac"), ("hessian_top", "lambda_max(H)"))


def _fmt(v: float) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3g}"


def summary_rows(inspection: Inspection) -> list[list[str]]:
    rows = []
    for s in inspection.schemes:
        summ = s.summary()
        rows.append([s.scheme] + [_fmt(summ[key]) for key, _ in COLUMNS])
    return rows


def rich_table(inspection: Inspection) -> Any:
    """A ``rich.table.Table`` with one row per scheme."""
    from rich.table import Table

    title = " ".join(f"{k}={v}" for k, v in inspection.meta.items() if k != "params")
    table = Table(title=f"initial state ({title})")
    table.add_column("scheme")
    for _, label in COLUMNS:
        table.add_column(label, justify="right")
    for row in summary_rows(inspection):
        table.add_row(*row)
    return table


def _line_plot(inspection: Inspection, attr: str, title: str, ylabel: str, xlabel: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    drawn = False
    for s in inspection.schemes:
        ys = [y for y in getattr(s, attr) if y is not None and math.isfinite(y) and y > 0]
        if ys:
            ax.plot(range(1, len(ys) + 1), ys, marker=".", label=s.scheme)
            drawn = True
    if drawn:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def _bar_plot(inspection: Inspection, attr: str, title: str, ylabel: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    names = [s.scheme for s in inspection.schemes]
    vals = [getattr(s, attr) for s in inspection.schemes]
    ax.bar(names, [v if math.isfinite(v) else 0.0 for v in vals])
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=20)
    return fig


def report_page(inspection: Inspection, title: str = "Initial state") -> Page:
    """HTML page: the summary table, then one figure per measure with the schemes overlaid."""
    meta = ", ".join(f"{k}={v}" for k, v in inspection.meta.items())
    page = Page(title, subtitle=meta)
    page.heading("Summary")
    page.table(["scheme"] + [label for _, label in COLUMNS], summary_rows(inspection),
               caption="forward ratio near 1 and backward ratio near 1 = signals kept alive; "
                       "Jacobian spread near 0 = dynamical isometry; IGB near 1/C = no bias")
    page.heading("Forward signal")
    page.figure(_line_plot(inspection, "forward_var", "pre-activation variance through depth",
                           "variance", "weight layer"))
    page.heading("Backward signal")
    page.figure(_line_plot(inspection, "backward_var", "loss-gradient variance through depth",
                           "variance (x batch^2)", "weight layer"))
    page.heading("Dynamical isometry")
    page.figure(_line_plot(inspection, "jacobian_sv", "input-output Jacobian singular values",
                           "singular value", "rank"))
    if any(s.weight_product_sv for s in inspection.schemes):
        page.figure(_line_plot(inspection, "weight_product_sv",
                               "singular values of the weight product", "singular value", "rank"))
    page.heading("Initial guessing bias (papers.md row 16)")
    page.figure(_bar_plot(inspection, "guessing_bias", "fraction given the dominant class",
                          "G_max"))
    page.heading("Conditioning at step 0")
    page.figure(_bar_plot(inspection, "hessian_top", "top Hessian eigenvalue", "lambda_max"))
    return page
