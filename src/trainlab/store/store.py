"""An embedded SQLite run store: runs, metrics in long form, and artifact files.

Several processes may write at once (a grid runs one process per core): the database runs in
WAL mode with a busy timeout, every write is one short ``BEGIN IMMEDIATE`` transaction, and
metric rows go in batches through ``executemany``, so a record is either wholly there or not
at all. Artifacts (checkpoints, reports) are files under the store directory, written to a
temporary name and renamed into place, and referenced from the database.
"""

from __future__ import annotations

import json
import math
import os
import platform
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainlab.errors import TrainlabError, check_choice
from trainlab.store._schema import SCHEMA, SCHEMA_VERSION

STATUSES = ("running", "completed", "diverged", "interrupted", "failed")
DB_NAME = "runs.sqlite"


def default_store_path() -> Path:
    """``$TRAINLAB_STORE`` or ``./trainlab-runs``."""
    return Path(os.environ.get("TRAINLAB_STORE", "trainlab-runs"))


@dataclass(frozen=True)
class RunRecord:
    id: str
    name: str
    config: dict[str, Any]
    status: str
    seed: int | None
    created: float
    updated: float
    versions: dict[str, str]
    summary: dict[str, Any]


def _versions() -> dict[str, str]:
    import torch

    import trainlab

    return {"trainlab": trainlab.__version__, "torch": torch.__version__,
            "python": platform.python_version()}


def _json_safe(obj: Any) -> Any:
    """JSON cannot hold NaN/Inf portably: encode them as strings."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


class RunStore:
    """A directory holding ``runs.sqlite`` and ``artifacts/<run id>/``.

    Args:
        path: the store directory (default :func:`default_store_path`); created if missing.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.root = Path(path) if path is not None else default_store_path()
        if self.root.suffix == ".sqlite":
            self.root = self.root.parent
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / DB_NAME
        self._conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise TrainlabError(f"{self.db_path} is not a trainlab run store: {exc}") from None
        if tables and version != SCHEMA_VERSION:
            raise TrainlabError(
                f"{self.db_path} has schema version {version}; this trainlab reads version "
                f"{SCHEMA_VERSION}")
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if not tables:
            with self._tx(conn):
                for stmt in filter(str.strip, SCHEMA.split(";")):
                    conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return conn

    @staticmethod
    @contextmanager
    def _tx(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:  # picklable for process pools: reconnects
        return {"root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"])

    # ---- runs -------------------------------------------------------------------------
    def create_run(self, config: dict[str, Any], *, name: str = "", seed: int | None = None
                   ) -> str:
        """Insert a new run with status ``running``; returns its id."""
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        now = time.time()
        with self._tx(self._conn) as c:
            c.execute(
                "INSERT INTO runs (id, name, config, status, seed, created, updated, versions)"
                " VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
                (run_id, name or run_id, json.dumps(_json_safe(config)), seed, now, now,
                 json.dumps(_versions())))
        return run_id

    def set_status(self, run_id: str, status: str, summary: dict[str, Any] | None = None
                   ) -> None:
        check_choice("status", status, STATUSES, owner="RunStore.set_status")
        with self._tx(self._conn) as c:
            if summary is None:
                c.execute("UPDATE runs SET status=?, updated=? WHERE id=?",
                          (status, time.time(), run_id))
            else:
                c.execute("UPDATE runs SET status=?, updated=?, summary=? WHERE id=?",
                          (status, time.time(), json.dumps(_json_safe(summary)), run_id))

    def _record(self, row: tuple) -> RunRecord:
        rid, name, config, status, seed, created, updated, versions, summary = row
        return RunRecord(rid, name, json.loads(config), status, seed, created, updated,
                         json.loads(versions), json.loads(summary))

    _COLS = "id, name, config, status, seed, created, updated, versions, summary"

    def get_run(self, run_id: str) -> RunRecord:
        row = self._conn.execute(f"SELECT {self._COLS} FROM runs WHERE id=?",
                                 (run_id,)).fetchone()
        if row is None:
            raise TrainlabError(f"no run {run_id!r} in the store {self.root}")
        return self._record(row)

    def list_runs(self) -> list[RunRecord]:
        rows = self._conn.execute(f"SELECT {self._COLS} FROM runs ORDER BY created").fetchall()
        return [self._record(r) for r in rows]

    def resolve(self, ref: str) -> str:
        """A run id from an id, a unique id prefix, a run name (latest wins) or ``latest``."""
        if ref == "latest":
            row = self._conn.execute("SELECT id FROM runs ORDER BY created DESC LIMIT 1"
                                     ).fetchone()
            if row is None:
                raise TrainlabError(f"the store {self.root} has no runs")
            return row[0]
        ids = [r[0] for r in self._conn.execute(  # a prefix match, without LIKE wildcards
            "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY created",
            (len(ref), ref))]
        if ref in ids:
            return ref
        if len(ids) == 1:
            return ids[0]
        if len(ids) > 1:
            raise TrainlabError(f"run prefix {ref!r} is ambiguous: {', '.join(ids[:5])}")
        named = self._conn.execute("SELECT id FROM runs WHERE name=? ORDER BY created DESC",
                                   (ref,)).fetchone()
        if named:
            return named[0]
        raise TrainlabError(f"no run {ref!r} in the store {self.root} "
                            f"(see `trainlab runs list`)")

    def remove(self, run_id: str) -> None:
        """Delete a run, its metrics, artifact records and artifact files."""
        with self._tx(self._conn) as c:
            c.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
            c.execute("DELETE FROM artifacts WHERE run_id=?", (run_id,))
            c.execute("DELETE FROM runs WHERE id=?", (run_id,))
        shutil.rmtree(self.root / "artifacts" / run_id, ignore_errors=True)

    # ---- metrics ----------------------------------------------------------------------
    def log_metrics(self, run_id: str, rows: Iterable[tuple[int, str, float]]) -> int:
        """Append ``(step, name, value)`` rows in one transaction; returns the row count."""
        data = [(run_id, int(s), n, None if v != v else float(v)) for s, n, v in rows]
        if data:
            with self._tx(self._conn) as c:
                c.executemany("INSERT INTO metrics (run_id, step, name, value) VALUES (?,?,?,?)",
                              data)
        return len(data)

    def truncate_metrics(self, run_id: str, from_step: int) -> None:
        """Delete metrics with ``step >= from_step`` (used when resuming a run)."""
        with self._tx(self._conn) as c:
            c.execute("DELETE FROM metrics WHERE run_id=? AND step>=?", (run_id, from_step))

    def metric_names(self, run_id: str) -> list[str]:
        return [r[0] for r in self._conn.execute(
            "SELECT DISTINCT name FROM metrics WHERE run_id=? ORDER BY name", (run_id,))]

    def metrics(self, run_id: str, names: Iterable[str] | None = None
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{name: (steps, values)}`` sorted by step (NaN where a value was NaN)."""
        if names is None:
            cur = self._conn.execute(
                "SELECT name, step, value FROM metrics WHERE run_id=? ORDER BY name, step, rowid",
                (run_id,))
        else:
            names = list(names)
            marks = ",".join("?" * len(names))
            cur = self._conn.execute(
                f"SELECT name, step, value FROM metrics WHERE run_id=? AND name IN ({marks})"
                " ORDER BY name, step, rowid", (run_id, *names))
        grouped: dict[str, tuple[list[int], list[float]]] = {}
        for name, step, value in cur:
            s, v = grouped.setdefault(name, ([], []))
            s.append(step)
            v.append(math.nan if value is None else value)
        return {n: (np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64))
                for n, (s, v) in grouped.items()}

    def count_metrics(self, run_id: str) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM metrics WHERE run_id=?",
                                  (run_id,)).fetchone()[0]

    # ---- artifacts --------------------------------------------------------------------
    def artifact_dir(self, run_id: str) -> Path:
        d = self.root / "artifacts" / run_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    def add_artifact(self, run_id: str, name: str, path: str | os.PathLike[str]) -> None:
        rel = os.path.relpath(Path(path).resolve(), self.root.resolve())
        with self._tx(self._conn) as c:
            c.execute("INSERT OR REPLACE INTO artifacts (run_id, name, path) VALUES (?,?,?)",
                      (run_id, name, rel))

    def artifact(self, run_id: str, name: str) -> Path | None:
        row = self._conn.execute("SELECT path FROM artifacts WHERE run_id=? AND name=?",
                                 (run_id, name)).fetchone()
        return None if row is None else self.root / row[0]

    def artifacts(self, run_id: str) -> dict[str, Path]:
        return {n: self.root / p for n, p in self._conn.execute(
            "SELECT name, path FROM artifacts WHERE run_id=? ORDER BY name", (run_id,))}


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
