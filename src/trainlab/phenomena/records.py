"""Phenomenon verdicts recorded in the run store, so a gallery can be rebuilt without rerunning.

Each ``trainlab reproduce`` of one phenomenon is one run in the store: its config says
``{"kind": "phenomenon", "phenomenon": name, "mode": "quick" | "full", "seed": s}``, its
summary is :meth:`Outcome.to_json` (verdict, checks with seeds and spread, runtime), its
figure, if any, is the artifact ``figure`` (a PNG) and the data its ``run()`` returned is the
artifact ``data`` (JSON, :mod:`trainlab.store.json_codec`; records written before data was
kept have none). The run and its artifacts are written in one transaction.
:func:`latest` reads back the newest record per phenomenon and mode, :func:`read_data` its
data.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainlab.phenomena._base import Outcome
from trainlab.store import RunStore

RUN_KIND = "phenomenon"


@dataclass(frozen=True)
class Recorded:
    """One recorded reproduce: the outcome, the store's run id, when, and the figure."""

    outcome: Outcome
    run_id: str
    created: float
    png: bytes | None


def record(store: RunStore, outcome: Outcome, png: bytes | None = None,
           data: str | None = None) -> str:
    """Store ``outcome``, its figure (PNG bytes) and the data its run returned (JSON text
    from :func:`trainlab.store.json_codec.dumps`) as one run, in one transaction (the store
    holds all of it or none); returns the run id."""
    config = {"kind": RUN_KIND, "phenomenon": outcome.name, "mode": outcome.mode,
              "seed": outcome.seed}
    files = {}
    if png is not None:
        files["figure"] = ("figure.png", png)
    if data is not None:
        files["data"] = ("data.json", data.encode())
    return store.add_finished_run(
        config, status="failed" if outcome.error else "completed", summary=outcome.to_json(),
        files=files, name=f"reproduce {outcome.name} ({outcome.mode})", seed=outcome.seed)


def read_data(store: RunStore, run_id: str) -> str | None:
    """The JSON text of the data recorded with run ``run_id``, checked against the checksum
    recorded with it (:func:`trainlab.store.json_codec.loads` decodes it); None for a record
    that holds none (written before data was kept, or a run that raised)."""
    if store.artifact(run_id, "data") is None:
        return None
    return store.read_artifact(run_id, "data").decode()


def latest(store: RunStore, seed: int | None = None) -> dict[tuple[str, str], Recorded]:
    """``(phenomenon, mode) -> Recorded``: the newest finished record of each; with ``seed``,
    the newest of those run with that seed."""
    out: dict[tuple[str, str], Recorded] = {}
    for run in store.list_runs():  # oldest first: later records replace earlier ones
        if run.config.get("kind") != RUN_KIND or run.status not in ("completed", "failed"):
            continue
        if seed is not None and run.config.get("seed") != seed:
            continue
        fig = store.artifact(run.id, "figure")
        png = fig.read_bytes() if fig is not None and fig.exists() else None
        outcome = Outcome.from_json(run.summary)
        out[(outcome.name, outcome.mode)] = Recorded(outcome, run.id, run.created, png)
    return out
