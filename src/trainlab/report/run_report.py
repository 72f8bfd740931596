"""Reports for one run and comparisons of several, built from the run store.

Pipeline: read the store -> :class:`RunView` (a typed view of a run's numbers) -> figures and
tables -> :class:`~trainlab.report.page.Page` -> one self-contained HTML file.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainlab.probes import PROBES
from trainlab.registry import Entry
from trainlab.report import plots
from trainlab.report.page import Page
from trainlab.store import RunRecord, RunStore

Series = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class RunView:
    """A run's record and its metrics (``{name: (steps, values)}``)."""

    record: RunRecord
    metrics: dict[str, Series]

    @classmethod
    def load(cls, store: RunStore, run_id: str) -> RunView:
        return cls(store.get_run(run_id), store.metrics(run_id))

    def get(self, name: str) -> Series | None:
        return self.metrics.get(name)

    def layered(self, prefix: str) -> dict[str, Series]:
        """Per-tensor series ``prefix/<param name>``, keyed by the param name."""
        return {n[len(prefix) + 1:]: s for n, s in self.metrics.items()
                if n.startswith(prefix + "/")}

    @property
    def label(self) -> str:
        return self.record.name


def _smooth(s: Series, window: int = 25) -> Series:
    steps, values = s
    if len(values) < 2 * window:
        return s
    kernel = np.ones(window) / window
    return steps[window - 1:], np.convolve(values, kernel, mode="valid")


def _status_line(r: RunRecord) -> str:
    created = dt.datetime.fromtimestamp(r.created).strftime("%Y-%m-%d %H:%M:%S")
    return f"run {r.id} · status {r.status} · seed {r.seed} · started {created}"


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            rows += _flat(v, f"{prefix}{k}.")
        else:
            rows.append((f"{prefix}{k}", json.dumps(v) if isinstance(v, (dict, list)) else v))
    return rows


def _series(view: RunView, metrics: tuple[str, ...]
            ) -> tuple[dict[str, Series], dict[str, dict[str, Series]]]:
    """The run's series of a probe's declared metrics: scalars by name, families
    (``"prefix/*"``) by prefix."""
    scalars = {m: view.get(m) for m in metrics if not m.endswith("/*") and view.get(m)}
    families = {m[:-2]: view.layered(m[:-2]) for m in metrics if m.endswith("/*")}
    return scalars, {k: v for k, v in families.items() if v}


def _probe_section(page: Page, view: RunView, entry: Entry[Any]) -> None:
    """A section for one probe, drawn from its declared metrics and plot hint
    (:class:`~trainlab.probes._probe.ProbeInfo`); nothing when the run has none of its metrics."""
    info = entry.info
    if not info.plot:
        return
    scalars, families = _series(view, info.metrics)
    if not scalars and not families:
        return
    rows = "; ".join(f"papers.md row {r}" for r in entry.papers)
    caption = entry.summary + (f" ({rows})" if rows else "")
    page.heading(info.title or entry.name)
    if info.plot == "edge-of-stability" and view.get("lr") and info.metrics[0] in scalars:
        s, lr = scalars[info.metrics[0]], view.get("lr")
        page.figure(plots.sharpness(s[0], s[1], lr[0], lr[1]),
                    caption + "; gradient descent is stable on a quadratic while it stays "
                              "below 2/lr")
    elif info.plot == "heatmap":
        for prefix, series in families.items():
            steps = next(iter(series.values()))[0]
            page.figure(plots.heatmap(steps, {n: s[1] for n, s in series.items()},
                                      f"{prefix} per parameter tensor"), caption)
    else:
        logy = info.plot == "log-curves"
        panels = ([(entry.name, scalars, logy)] if scalars else []) + [
            (prefix, series, logy) for prefix, series in families.items()]
        for i in range(0, len(panels), 2):
            page.figure(plots.curves(panels[i:i + 2]), caption if i == 0 else "")


def build_run_page(view: RunView) -> Page:
    r = view.record
    page = Page(f"trainlab run {r.name}", _status_line(r))
    if r.status == "diverged":
        page.text(f"The run diverged (loss became NaN/Inf) at step "
                  f"{r.summary.get('diverged_at', '?')}; everything up to it is shown.",
                  css="status-diverged")
    probe_rows = [(name, "measured nothing", why)
                  for name, why in r.summary.get("skipped_probes", {}).items()]
    probe_rows += [(name, "measured less", why)
                   for name, why in r.summary.get("probe_notes", {}).items()]
    page.heading("Summary").table(["quantity", "value"], [
        (k, v) for k, v in r.summary.items() if k not in ("skipped_probes", "probe_notes")])
    if probe_rows:
        page.heading("Probes that did not measure everything").table(
            ["probe", "outcome", "why"], probe_rows)

    loss_series = {}
    if view.get("loss"):
        loss_series["batch loss (smoothed)"] = _smooth(view.get("loss"))
    for split in ("train", "test"):
        if view.get(f"{split}/loss"):
            loss_series[f"{split} loss"] = view.get(f"{split}/loss")
    acc = {f"{s} accuracy": view.get(f"{s}/accuracy") for s in ("train", "test")
           if view.get(f"{s}/accuracy")}
    panels = [("loss", loss_series, True)] + ([("accuracy", acc, False)] if acc else [])
    if view.get("lr"):
        panels.append(("learning rate", {"lr": view.get("lr")}, False))
    page.heading("Loss and accuracy").figure(plots.curves(panels))

    for entry in PROBES.entries():
        _probe_section(page, view, entry)
    page.heading("Configuration").table(["key", "value"], _flat(r.config))
    page.table(["package", "version"], list(r.versions.items()))
    return page


def write_run_report(store: RunStore, run_id: str, path: str | Path | None = None) -> Path:
    """Render the run's HTML report (default: ``artifacts/<run>/report.html``) and register
    it as an artifact."""
    view = RunView.load(store, run_id)
    out = Path(path) if path else store.artifact_dir(run_id) / "report.html"
    build_run_page(view).write(out)
    if path is None:
        store.add_artifact(run_id, "report", out)
    return out


def _log_scale(series: dict[str, Series]) -> bool:
    """Log y for positive values spanning more than a decade (losses, norms, sharpness),
    linear otherwise (accuracies, distances from init that start at 0, cosines)."""
    finite = [v[np.isfinite(v)] for _, v in series.values()]
    values = np.concatenate(finite) if finite else np.empty(0)
    return bool(len(values) and values.min() > 0 and values.max() > 10 * values.min())


def _every_step(s: Series) -> bool:
    return len(s[0]) > 1 and bool(np.all(np.diff(s[0]) == 1))


def comparison_panels(views: list[RunView]) -> list[tuple[str, dict[str, Series], bool]]:
    """The comparison's panels ``(title, {run label: series}, log y)``: one per metric that
    the probes declare for comparison (:attr:`~trainlab.probes._probe.ProbeInfo.compared`) and at
    least one run recorded: first the probes without a report section of their own (the loss,
    then the evaluation's families), then the others in registry order. A metric recorded at
    every step is smoothed."""
    entries = sorted(PROBES.entries(), key=lambda e: (
        e.info.plot != "", any("*" in m for m in e.info.compared)))
    names: list[str] = []
    for entry in entries:
        for metric in entry.info.compared:
            if metric.endswith("/*"):
                prefix = metric[:-1]
                names += sorted({n for v in views for n in v.metrics if n.startswith(prefix)})
            else:
                names.append(metric)
    panels = []
    for name in dict.fromkeys(names):
        raw = {v.label: v.get(name) for v in views if v.get(name)}
        if not raw:
            continue
        smoothed = any(_every_step(s) for s in raw.values())
        series = {k: _smooth(s) if _every_step(s) else s for k, s in raw.items()}
        panels.append((f"{name} (smoothed)" if smoothed else name, series, _log_scale(raw)))
    return panels


def build_comparison_page(views: list[RunView]) -> Page:
    page = Page(f"trainlab comparison of {len(views)} runs",
                ", ".join(v.record.id for v in views))
    keys = sorted({k for v in views for k in v.record.summary})
    page.heading("Summary").table(["run", *keys],
                                  [[v.label, *(v.record.summary.get(k, "") for k in keys)]
                                   for v in views])
    varying = sorted({k for k, _ in _flat(views[0].record.config)
                      if len({str(dict(_flat(v.record.config)).get(k)) for v in views}) > 1})
    if varying:
        page.table(["run", *varying], [[v.label, *(dict(_flat(v.record.config)).get(k, "")
                                                   for k in varying)] for v in views],
                   caption="settings that differ between the runs")
    panels = comparison_panels(views)
    for i in range(0, len(panels), 2):
        page.figure(plots.curves(panels[i:i + 2]))
    return page


def write_comparison_report(store: RunStore, run_ids: list[str], path: str | Path) -> Path:
    views = [RunView.load(store, r) for r in run_ids]
    return build_comparison_page(views).write(path)
