"""An embedded SQLite run store: runs, metrics in long form, and artifact files.

Several processes may write at once (a grid runs one process per core): the database runs in
WAL mode with a busy timeout, every write is one short ``BEGIN IMMEDIATE`` transaction, and
metric rows go in batches through ``executemany``, so a record is either wholly there or not
at all. A metric row is unique per (run, step, name), which the schema enforces.

A run being trained is owned by one process (:mod:`trainlab.store.lease`): every write of
the owner checks its lease in the same transaction.

Trust: run ids are checked against the pattern of the ids the store generates
(:data:`RUN_ID_PATTERN`) on every read and write, and every artifact path is resolved and
checked to lie in its run's folder before it is read, written or removed. Artifacts
(checkpoints, reports) are written to a temporary name, fsynced and renamed into place; the
SHA-256 of their bytes is recorded in the database and :meth:`RunStore.read_artifact`
refuses a file whose bytes differ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainlab.errors import ConfigError, TrainlabError, check_choice
from trainlab.store._schema import LEASES, MIGRATIONS, SCHEMA, SCHEMA_VERSION
from trainlab.store.lease import HOST, Heartbeat, Lease, LeaseLostError, may_take

RECORDED = ("running", "completed", "diverged", "interrupted", "failed")
# what `runs list` shows: a `running` run whose owner died is `crashed` (resumable)
STATUSES = (*RECORDED, "crashed")
DB_NAME = "runs.sqlite"
RUN_ID_PATTERN = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

log = logging.getLogger("trainlab")


def default_store_path() -> Path:
    """``$TRAINLAB_STORE`` or ``./trainlab-runs``."""
    return Path(os.environ.get("TRAINLAB_STORE", "trainlab-runs"))


def _new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def check_run_id(run_id: object) -> str:
    """Return ``run_id`` if it has the form of the ids the store generates
    (``YYYYMMDD-HHMMSS-xxxxxx``), else raise :class:`TrainlabError`: an id becomes a folder
    name, so nothing else (``../x``, ``/``, an empty string) may reach the filesystem."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise TrainlabError(f"invalid run id {run_id!r}: not an id this store generates "
                            f"(YYYYMMDD-HHMMSS-xxxxxx); refusing to use it")
    return run_id


@dataclass(frozen=True)
class RunRecord:
    id: str
    name: str
    config: dict[str, Any]
    status: str  # as recorded, except a `running` run whose owner died: `crashed`
    seed: int | None
    created: float
    updated: float
    versions: dict[str, str]
    summary: dict[str, Any]
    lease: Lease | None = None  # the owner of a running run


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


def _store_root(path: str | os.PathLike[str] | None) -> Path:
    """The store directory for ``path``: a directory (created if missing), or the store's own
    ``runs.sqlite`` file (its directory); any other file is an error."""
    root = Path(path) if path is not None else default_store_path()
    if str(path) == "":
        raise ConfigError("the store path is empty; give a directory")
    if root.is_file() and root.name == DB_NAME:
        return root.parent
    if root.exists() and not root.is_dir():
        raise ConfigError(f"the store path {str(root)!r} is a file; a store is a directory "
                          f"(its database is DIR/{DB_NAME})")
    if not root.exists() and root.suffix in (".sqlite", ".db", ".sqlite3"):
        raise ConfigError(f"the store path {str(root)!r} looks like a database file; give the "
                          f"store directory (its database is DIR/{DB_NAME})")
    return _mkdir(root, "the store directory")


def _mkdir(path: Path, what: str) -> Path:
    """``path`` created with its parents, or a one-line :class:`TrainlabError`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainlabError(f"cannot create {what} {str(path)!r}: "
                            f"{exc.strerror or exc}") from None
    return path


class RunStore:
    """A directory holding ``runs.sqlite`` and ``artifacts/<run id>/``.

    Args:
        path: the store directory (default :func:`default_store_path`); created if missing.
            The store's ``runs.sqlite`` is accepted too; any other file raises.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.root = _store_root(path)
        self.db_path = self.root / DB_NAME
        self._owned: dict[str, Heartbeat] = {}  # leases this object holds
        self._conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None)
            conn.execute("BEGIN")  # one consistent snapshot of version and tables
            try:
                version, tables = self._schema_state(conn)
            finally:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise TrainlabError(f"{self.db_path} is not a trainlab run store: {exc}") from None
        self._check_version(version, tables)
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            self._use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            if not tables or version < SCHEMA_VERSION:
                # under the write lock, so that processes opening a new store at once (ranks
                # of a DDP job, parallel phenomena) create or migrate it exactly once: each
                # looks again after taking the lock and finds what the first one wrote
                with self._tx(conn):
                    version, tables = self._schema_state(conn)
                    self._check_version(version, tables)
                    if not tables:
                        for stmt in [*filter(str.strip, SCHEMA.split(";")), LEASES]:
                            conn.execute(stmt)
                        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    elif version < SCHEMA_VERSION:
                        self._migrate(conn, version)
        except sqlite3.OperationalError as exc:
            raise TrainlabError(f"cannot open the run store {self.db_path}: {exc}") from None
        return conn

    @staticmethod
    def _use_wal(conn: sqlite3.Connection, patience: float = 60.0) -> None:
        """Switch to WAL journaling (persistent: usually done once, by the creator). Changing
        the journal mode answers "database is locked" at once, without the busy timeout,
        while another process holds the file, so it is retried here for up to ``patience``
        seconds."""
        deadline = time.monotonic() + patience
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @staticmethod
    def _schema_state(conn: sqlite3.Connection) -> tuple[int, set[str]]:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        return version, tables

    def _check_version(self, version: int, tables: set[str]) -> None:
        if tables and not (1 <= version <= SCHEMA_VERSION):
            raise TrainlabError(
                f"{self.db_path} has schema version {version}; this trainlab reads versions "
                f"1 to {SCHEMA_VERSION}")

    def _migrate(self, conn: sqlite3.Connection, version: int) -> None:
        """Migrate inside the caller's write transaction."""
        before = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        for v in range(version, SCHEMA_VERSION):
            for stmt in MIGRATIONS[v]:
                conn.execute(stmt)
        dropped = before - conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        log.warning("run store %s migrated from schema version %d to %d (%d duplicate metric "
                    "rows removed, the last written kept; artifacts written before carry no "
                    "checksum)", self.db_path, version, SCHEMA_VERSION, dropped)

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
        for beat in self._owned.values():
            beat.stop()
        self._owned = {}
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:  # picklable for process pools: reconnects
        return {"root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"])

    # ---- ownership --------------------------------------------------------------------
    def _lease(self, run_id: str) -> Lease | None:
        row = self._conn.execute("SELECT token, pid, host, heartbeat FROM leases WHERE run_id=?",
                                 (run_id,)).fetchone()
        return None if row is None else Lease(*row)

    def _fence(self, c: sqlite3.Connection, run_id: str) -> None:
        """Inside a write: raise :class:`LeaseLostError` if this object owned ``run_id`` and
        another process has taken it over since."""
        beat = self._owned.get(run_id)
        if beat is None:
            return
        row = c.execute("SELECT token FROM leases WHERE run_id=?", (run_id,)).fetchone()
        if row is None or row[0] != beat.token:
            raise LeaseLostError(f"run {run_id} was taken over by another process; this "
                                 f"process stops writing to it")

    def _own(self, c: sqlite3.Connection, run_id: str) -> None:
        token = secrets.token_hex(8)
        c.execute("INSERT OR REPLACE INTO leases (run_id, token, pid, host, heartbeat) "
                  "VALUES (?,?,?,?,?)", (run_id, token, os.getpid(), HOST, time.time()))
        self._owned[run_id] = Heartbeat(self.db_path, run_id, token)

    def acquire(self, run_id: str, *, take_over: bool = False) -> None:
        """Make this process the owner of ``run_id`` (see :mod:`trainlab.store.lease` for
        when another owner's lease is taken over); raises
        :class:`~trainlab.store.lease.RunOwnedError` when it may not be."""
        check_run_id(run_id)
        if run_id in self._owned:
            return
        with self._tx(self._conn) as c:
            row = c.execute("SELECT token, pid, host, heartbeat FROM leases WHERE run_id=?",
                            (run_id,)).fetchone()
            if row is not None:
                may_take(Lease(*row), run_id, take_over)
            self._own(c, run_id)

    def release(self, run_id: str) -> None:
        """Give up ownership of ``run_id`` (no-op when this object does not own it)."""
        beat = self._owned.pop(run_id, None)
        if beat is not None:
            beat.stop()
            with self._tx(self._conn) as c:
                c.execute("DELETE FROM leases WHERE run_id=? AND token=?", (run_id, beat.token))

    def lease_lost(self, run_id: str) -> bool:
        """True when this object owned ``run_id`` and its heartbeat found the lease gone."""
        beat = self._owned.get(run_id)
        return beat is not None and beat.lost.is_set()

    # ---- runs -------------------------------------------------------------------------
    def create_run(self, config: dict[str, Any], *, name: str = "", seed: int | None = None,
                   own: bool = True) -> str:
        """Insert a new run with status ``running``; returns its id. With ``own`` (default)
        this object owns the run until :meth:`set_status` records a final status."""
        run_id = _new_run_id()
        with self._tx(self._conn) as c:
            self._insert_run(c, run_id, config, name, seed, "running", {})
            if own:
                self._own(c, run_id)
        return run_id

    @staticmethod
    def _insert_run(c: sqlite3.Connection, run_id: str, config: dict[str, Any], name: str,
                    seed: int | None, status: str, summary: dict[str, Any]) -> None:
        now = time.time()
        c.execute(
            "INSERT INTO runs (id, name, config, status, seed, created, updated, versions, "
            "summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, name or run_id, json.dumps(_json_safe(config)), status, seed, now, now,
             json.dumps(_versions()), json.dumps(_json_safe(summary))))

    def add_finished_run(self, config: dict[str, Any], *, status: str,
                         summary: dict[str, Any], files: Mapping[str, tuple[str, bytes]] = {},
                         name: str = "", seed: int | None = None) -> str:
        """Record a run that is already over, with its artifacts, all at once; returns its
        id. ``files`` maps artifact name -> ``(file name, bytes)``.

        The files are written first (temporary name, fsync, rename) into the new run's
        folder; then the run (with its final ``status`` and ``summary``) and the artifact
        records with their SHA-256 go in one transaction. So the store holds the whole
        record or none of it: on any error the files written are removed and the error is
        raised, and a process killed before the transaction leaves only a folder that no
        record refers to (:meth:`clean_orphans` removes it later).
        """
        check_choice("status", status, RECORDED[1:], owner="RunStore.add_finished_run")
        names = [f for f, _ in files.values()]
        for filename in names:
            if not _FILE_NAME.fullmatch(filename) or names.count(filename) > 1:
                raise TrainlabError(f"invalid artifact file name {filename!r} (a plain name, "
                                    f"once per run)")
        run_id, folder = self._fresh_folder()
        try:
            rows = []
            for art, (filename, data) in files.items():
                path = _mkdir(folder, "the artifact folder") / filename
                atomic_write_bytes(path, data)
                rows.append((run_id, art, os.path.relpath(path.resolve(), self.root.resolve()),
                             hashlib.sha256(data).hexdigest()))
            with self._tx(self._conn) as c:
                self._insert_run(c, run_id, config, name, seed, status, summary)
                c.executemany("INSERT INTO artifacts (run_id, name, path, sha256) "
                              "VALUES (?,?,?,?)", rows)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return run_id

    def set_status(self, run_id: str, status: str, summary: dict[str, Any] | None = None
                   ) -> None:
        """Record ``status`` (and the summary); a final status (anything but ``running``)
        also ends this object's ownership of the run."""
        check_run_id(run_id)
        check_choice("status", status, RECORDED, owner="RunStore.set_status")
        with self._tx(self._conn) as c:
            self._fence(c, run_id)
            if summary is None:
                c.execute("UPDATE runs SET status=?, updated=? WHERE id=?",
                          (status, time.time(), run_id))
            else:
                c.execute("UPDATE runs SET status=?, updated=?, summary=? WHERE id=?",
                          (status, time.time(), json.dumps(_json_safe(summary)), run_id))
        if status != "running":
            self.release(run_id)

    _COLS = ("r.id, r.name, r.config, r.status, r.seed, r.created, r.updated, r.versions, "
             "r.summary, l.token, l.pid, l.host, l.heartbeat")
    _FROM = "FROM runs r LEFT JOIN leases l ON l.run_id = r.id"

    def _record(self, row: tuple) -> RunRecord:
        rid, name, config, status, seed, created, updated, versions, summary = row[:9]
        lease = None if row[9] is None else Lease(*row[9:])
        if status == "running" and lease is not None and lease.stale():
            status = "crashed"
        return RunRecord(rid, name, json.loads(config), status, seed, created, updated,
                         json.loads(versions), json.loads(summary), lease)

    def get_run(self, run_id: str) -> RunRecord:
        check_run_id(run_id)
        row = self._conn.execute(f"SELECT {self._COLS} {self._FROM} WHERE r.id=?",
                                 (run_id,)).fetchone()
        if row is None:
            raise TrainlabError(f"no run {run_id!r} in the store {self.root}")
        return self._record(row)

    def list_runs(self) -> list[RunRecord]:
        rows = self._conn.execute(f"SELECT {self._COLS} {self._FROM} ORDER BY r.created"
                                  ).fetchall()
        return [self._record(r) for r in rows]

    def resolve(self, ref: str) -> str:
        """A run id from an id, a unique id prefix, a run name (latest wins) or ``latest``.
        The id found is checked (:func:`check_run_id`) before it is returned."""
        if not isinstance(ref, str) or not ref.strip():
            raise TrainlabError(f"empty run reference {ref!r}: give an id, a prefix of one, "
                                f"a run name or 'latest'")
        if ref == "latest":
            row = self._conn.execute("SELECT id FROM runs ORDER BY created DESC LIMIT 1"
                                     ).fetchone()
            if row is None:
                raise TrainlabError(f"the store {self.root} has no runs")
            return check_run_id(row[0])
        ids = [r[0] for r in self._conn.execute(  # a prefix match, without LIKE wildcards
            "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY created",
            (len(ref), ref))]
        if ref in ids:
            return check_run_id(ref)
        if len(ids) == 1:
            return check_run_id(ids[0])
        if len(ids) > 1:
            raise TrainlabError(f"run prefix {ref!r} is ambiguous: {', '.join(ids[:5])}")
        named = self._conn.execute("SELECT id FROM runs WHERE name=? ORDER BY created DESC",
                                   (ref,)).fetchone()
        if named:
            return check_run_id(named[0])
        raise TrainlabError(f"no run {ref!r} in the store {self.root} "
                            f"(see `trainlab runs list`)")

    def remove(self, run_id: str) -> None:
        """Delete a run, its metrics, artifact records and its artifact folder (checked to
        lie inside the store)."""
        folder = self._run_folder(run_id)
        with self._tx(self._conn) as c:
            c.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
            c.execute("DELETE FROM artifacts WHERE run_id=?", (run_id,))
            c.execute("DELETE FROM leases WHERE run_id=?", (run_id,))
            c.execute("DELETE FROM runs WHERE id=?", (run_id,))
        if folder.is_symlink():
            folder.unlink()
        else:
            shutil.rmtree(folder, ignore_errors=True)

    # ---- metrics ----------------------------------------------------------------------
    def log_metrics(self, run_id: str, rows: Iterable[tuple[int, str, float]]) -> int:
        """Insert ``(step, name, value)`` rows in one transaction; returns the row count.
        A row whose (step, name) the run already has raises :class:`TrainlabError`."""
        check_run_id(run_id)
        data = [(run_id, int(s), n, None if v != v else float(v)) for s, n, v in rows]
        if data:
            try:
                with self._tx(self._conn) as c:
                    self._fence(c, run_id)
                    c.executemany(
                        "INSERT INTO metrics (run_id, step, name, value) VALUES (?,?,?,?)", data)
            except sqlite3.IntegrityError as exc:
                raise TrainlabError(f"run {run_id}: metric rows already recorded ({exc}); "
                                    f"a (step, name) pair is written once") from None
        return len(data)

    def truncate_metrics(self, run_id: str, from_step: int) -> None:
        """Delete metrics with ``step >= from_step`` (used when resuming a run)."""
        check_run_id(run_id)
        with self._tx(self._conn) as c:
            self._fence(c, run_id)
            c.execute("DELETE FROM metrics WHERE run_id=? AND step>=?", (run_id, from_step))

    def metric_names(self, run_id: str) -> list[str]:
        check_run_id(run_id)
        return [r[0] for r in self._conn.execute(
            "SELECT DISTINCT name FROM metrics WHERE run_id=? ORDER BY name", (run_id,))]

    def metrics(self, run_id: str, names: Iterable[str] | None = None
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{name: (steps, values)}`` sorted by step (NaN where a value was NaN)."""
        check_run_id(run_id)
        if names is None:
            cur = self._conn.execute(
                "SELECT name, step, value FROM metrics WHERE run_id=? ORDER BY name, step",
                (run_id,))
        else:
            names = list(names)
            marks = ",".join("?" * len(names))
            cur = self._conn.execute(
                f"SELECT name, step, value FROM metrics WHERE run_id=? AND name IN ({marks})"
                " ORDER BY name, step", (run_id, *names))
        grouped: dict[str, tuple[list[int], list[float]]] = {}
        for name, step, value in cur:
            s, v = grouped.setdefault(name, ([], []))
            s.append(step)
            v.append(math.nan if value is None else value)
        return {n: (np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64))
                for n, (s, v) in grouped.items()}

    def count_metrics(self, run_id: str) -> int:
        check_run_id(run_id)
        return self._conn.execute("SELECT COUNT(*) FROM metrics WHERE run_id=?",
                                  (run_id,)).fetchone()[0]

    # ---- artifacts --------------------------------------------------------------------
    def _fresh_folder(self) -> tuple[str, Path]:
        """A new run id whose artifact folder does not exist yet (so that removing it after a
        failed write cannot touch another run's files)."""
        while True:
            run_id = _new_run_id()
            folder = self._run_folder(run_id)
            if not folder.exists() and not folder.is_symlink():
                return run_id, folder

    def _run_folder(self, run_id: str) -> Path:
        """``artifacts/<run id>`` after checking the id and that the folder resolves inside
        the store's artifacts folder (no symlink out of it)."""
        folder = self.root / "artifacts" / check_run_id(run_id)
        base = (self.root / "artifacts").resolve()
        if folder.resolve().parent != base:
            raise TrainlabError(f"the artifact folder of run {run_id} resolves to "
                                f"{folder.resolve()}, outside the store {self.root}; "
                                f"refusing to touch it")
        return folder

    def _inside(self, run_id: str, path: Path) -> Path:
        """``path`` after checking that it resolves to a
        file in the run's artifact folder."""
        folder = self._run_folder(run_id).resolve()
        if path.resolve().parent != folder:
            raise TrainlabError(f"artifact path {str(path)!r} of run {run_id} lies outside "
                                f"its folder {folder}; refusing to touch it")
        return path

    def artifact_dir(self, run_id: str) -> Path:
        return _mkdir(self._run_folder(run_id), "the artifact folder")

    def check_writable(self) -> None:
        """Raise :class:`TrainlabError` unless the database and the artifacts folder can be
        written (a small file is written and removed), so a run fails before it trains."""
        probe = self.root / "artifacts" / f".writable.{os.getpid()}.tmp"
        try:
            probe.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(probe, b"ok")
            probe.unlink()
            with self._tx(self._conn) as c:  # a write lock needs a writable database
                c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise TrainlabError(f"the run store {self.root} is not writable: {reason}") from None

    def add_artifact(self, run_id: str, name: str, path: str | os.PathLike[str]) -> None:
        """Record the file ``path`` (in the run's artifact folder) as artifact ``name``,
        with the SHA-256 of its bytes."""
        path = self._inside(run_id, Path(path))  # relative to the working directory
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        self._record_artifact(run_id, name, path, digest)

    def _record_artifact(self, run_id: str, name: str, path: Path, digest: str) -> None:
        rel = os.path.relpath(path.resolve(), self.root.resolve())
        with self._tx(self._conn) as c:
            self._fence(c, run_id)
            c.execute("INSERT OR REPLACE INTO artifacts (run_id, name, path, sha256) "
                      "VALUES (?,?,?,?)", (run_id, name, rel, digest))

    def write_artifact(self, run_id: str, name: str, data: bytes, filename: str) -> Path:
        """Write ``data`` as artifact ``name`` (file ``filename`` in the run's folder):
        temporary file, fsync, rename, then the record with its SHA-256. A previous file of
        that artifact under another name is removed once the new one is recorded, so a kill
        at any point leaves a recorded file whose checksum matches."""
        if not _FILE_NAME.fullmatch(filename):
            raise TrainlabError(f"invalid artifact file name {filename!r}")
        old = self.artifact(run_id, name)
        path = self.artifact_dir(run_id) / filename
        atomic_write_bytes(path, data)
        self._record_artifact(run_id, name, path, hashlib.sha256(data).hexdigest())
        if old is not None and old.resolve() != path.resolve():
            old.unlink(missing_ok=True)
        return path

    def artifact(self, run_id: str, name: str) -> Path | None:
        check_run_id(run_id)
        row = self._conn.execute("SELECT path FROM artifacts WHERE run_id=? AND name=?",
                                 (run_id, name)).fetchone()
        return None if row is None else self._inside(run_id, self.root / row[0])

    def read_artifact(self, run_id: str, name: str) -> bytes:
        """The bytes of artifact ``name``, after checking them against the SHA-256 recorded
        when it was written; a missing, changed or unrecorded checksum raises
        :class:`TrainlabError` (nothing unverified is returned)."""
        check_run_id(run_id)
        row = self._conn.execute("SELECT path, sha256 FROM artifacts WHERE run_id=? AND name=?",
                                 (run_id, name)).fetchone()
        if row is None:
            raise TrainlabError(f"run {run_id} has no {name}")
        path = self._inside(run_id, self.root / row[0])
        if row[1] is None:
            raise TrainlabError(f"the {name} of run {run_id} has no recorded checksum (written "
                                f"before checksums were kept); refusing to load it unverified")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TrainlabError(f"cannot read the {name} of run {run_id} ({path}): "
                                f"{exc.strerror or exc}") from None
        if hashlib.sha256(data).hexdigest() != row[1]:
            raise TrainlabError(f"the {name} of run {run_id} ({path}) does not match the "
                                f"checksum recorded when it was written: it was changed or "
                                f"corrupted; refusing to load it")
        return data

    def artifacts(self, run_id: str) -> dict[str, Path]:
        check_run_id(run_id)
        return {n: self._inside(run_id, self.root / p) for n, p in self._conn.execute(
            "SELECT name, path FROM artifacts WHERE run_id=? ORDER BY name", (run_id,))}

    def clean_orphans(self, min_age_s: float = 3600.0) -> list[Path]:
        """Remove artifact folders that no run refers to and that have not changed for
        ``min_age_s`` seconds; returns them (each removal is logged).

        :meth:`add_finished_run` writes a run's files before its transaction, so a process
        killed in between leaves such a folder. The age keeps this from racing with a write
        in progress in another process. Only folders named like a run id, directly under
        ``artifacts/`` and not symbolic links, are considered."""
        base = self.root / "artifacts"
        if not base.is_dir():
            return []
        known = {r[0] for r in self._conn.execute("SELECT id FROM runs")}
        now, removed = time.time(), []
        for folder in sorted(base.iterdir()):
            if (not RUN_ID_PATTERN.fullmatch(folder.name) or folder.name in known
                    or folder.is_symlink() or not folder.is_dir()):
                continue
            try:
                newest = max([folder.lstat().st_mtime]
                             + [p.lstat().st_mtime for p in folder.iterdir()])
            except FileNotFoundError:  # removed by another process meanwhile
                continue
            if now - newest < min_age_s:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            log.warning("store %s: removed the artifact folder %s, which no run refers to "
                        "(left by a process killed while recording a run)", self.root,
                        folder.name)
            removed.append(folder)
        return removed

    def clean_artifacts(self, run_id: str) -> list[Path]:
        """Remove files of the run's folder that no record refers to (temporary files and
        checkpoints of a process killed mid-write); returns them."""
        folder = self._run_folder(run_id)
        if not folder.is_dir():
            return []
        kept = {p.resolve() for p in self.artifacts(run_id).values()}
        removed = [p for p in folder.iterdir()
                   if p.is_file() and p.resolve() not in kept
                   and (p.name.endswith(".tmp") or p.name.startswith("checkpoint"))]
        for p in removed:
            p.unlink(missing_ok=True)
        return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename into place. On
    any error (a full disk) the temporary file is removed and the error raised."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise



