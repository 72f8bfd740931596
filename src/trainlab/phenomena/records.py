"""Phenomenon verdicts recorded in the run store, so a gallery can be rebuilt without rerunning.

Each ``trainlab reproduce`` of one phenomenon is one run in the store: its config says
``{"kind": "phenomenon", "phenomenon": name, "mode": "quick" | "full", "seed": s}``, its
summary is :meth:`Outcome.to_json` (verdict, checks with seeds and spread, runtime) and its
figure, if any, is the artifact ``figure`` (a PNG). :func:`latest` reads back the newest
record per phenomenon and mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainlab.phenomena._base import Outcome
from trainlab.store import RunStore, atomic_write_bytes

RUN_KIND = "phenomenon"


@dataclass(frozen=True)
class Recorded:
    """One recorded reproduce: the outcome, the store's run id, when, and the figure."""

    outcome: Outcome
    run_id: str
    created: float
    png: bytes | None


def record(store: RunStore, outcome: Outcome, png: bytes | None = None) -> str:
    """Store ``outcome`` (and its figure as PNG bytes) as one run; returns the run id."""
    config = {"kind": RUN_KIND, "phenomenon": outcome.name, "mode": outcome.mode,
              "seed": outcome.seed}
    run_id = store.create_run(config, name=f"reproduce {outcome.name} ({outcome.mode})",
                              seed=outcome.seed)
    if png is not None:
        path = store.artifact_dir(run_id) / "figure.png"
        atomic_write_bytes(path, png)
        store.add_artifact(run_id, "figure", path)
    store.set_status(run_id, "failed" if outcome.error else "completed", outcome.to_json())
    return run_id


def latest(store: RunStore) -> dict[tuple[str, str], Recorded]:
    """``(phenomenon, mode) -> Recorded``: the newest finished record of each."""
    out: dict[tuple[str, str], Recorded] = {}
    for run in store.list_runs():  # oldest first: later records replace earlier ones
        if run.config.get("kind") != RUN_KIND or run.status not in ("completed", "failed"):
            continue
        fig = store.artifact(run.id, "figure")
        png = fig.read_bytes() if fig is not None and fig.exists() else None
        outcome = Outcome.from_json(run.summary)
        out[(outcome.name, outcome.mode)] = Recorded(outcome, run.id, run.created, png)
    return out
