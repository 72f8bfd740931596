"""Ownership of a running run: one process at a time, with a heartbeat.

A run being trained has one row in the store's ``leases`` table: a random token, the owner's
pid and host, and a heartbeat (unix time) that a background thread of the owner refreshes
every :data:`HEARTBEAT_SECONDS`. Every write of the owner (metrics, status, artifacts)
checks the token in the same transaction, so a process whose lease was taken over writes
nothing more (it gets :class:`LeaseLostError`).

Taking over (``trainlab run --resume RUN``):

- automatically, when the owner ran on this host and its pid no longer exists (a process
  killed with ``kill -9`` or a machine crash cannot hold a run);
- only with ``--take-over`` otherwise: an owner on another host whose heartbeat is older
  than :data:`STALE_AFTER` seconds, or a pid on this host that exists (it may have been
  reused by an unrelated process). A take-over of a live owner is safe for the data: the old
  owner's next write fails its token check and it stops.

A ``running`` run whose owner is dead (same host, pid gone) or whose heartbeat is older than
:data:`STALE_AFTER` is shown as ``crashed``.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from trainlab.errors import TrainlabError

HEARTBEAT_SECONDS = 5.0
STALE_AFTER = 60.0
HOST = socket.gethostname()

log = logging.getLogger("trainlab")


class LeaseLostError(TrainlabError):
    """This process no longer owns the run (another process took it over)."""


class RunOwnedError(TrainlabError):
    """The run is owned by another live process."""


@dataclass(frozen=True)
class Lease:
    """A lease row: who owns a run and when it last gave a sign of life."""

    token: str
    pid: int
    host: str
    heartbeat: float

    def owner_dead(self) -> bool:
        """True when the owner provably no longer runs: same host, pid gone."""
        return self.host == HOST and not pid_alive(self.pid)

    def stale(self, now: float | None = None) -> bool:
        """Dead owner, or no heartbeat for :data:`STALE_AFTER` seconds."""
        now = time.time() if now is None else now
        return self.owner_dead() or now - self.heartbeat > STALE_AFTER

    def describe(self, now: float | None = None) -> str:
        age = (time.time() if now is None else now) - self.heartbeat
        return f"pid {self.pid} on {self.host}, last heartbeat {age:.0f} s ago"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    try:  # a zombie (killed, not yet reaped by its parent) runs no code
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def may_take(lease: Lease, run_id: str, take_over: bool) -> None:
    """Raise :class:`RunOwnedError` unless ``lease`` may be taken (see the module doc)."""
    if lease.owner_dead():
        log.warning("run %s: taking over from its owner %s, which no longer runs",
                    run_id, lease.describe())
        return
    if take_over:
        log.warning("run %s: taking over from %s (--take-over)", run_id, lease.describe())
        return
    hint = ("its heartbeat stopped; if that process is gone, add --take-over"
            if lease.stale() else "wait for it to finish, or stop it first")
    raise RunOwnedError(f"run {run_id} is owned by another process ({lease.describe()}): "
                        f"{hint}")


class Heartbeat:
    """A daemon thread that refreshes a lease's heartbeat on its own connection; it notes
    (in :attr:`lost`) when the lease is no longer this process's."""

    def __init__(self, db_path: Path, run_id: str, token: str,
                 interval: float = HEARTBEAT_SECONDS):
        self.db_path, self.run_id, self.token, self.interval = db_path, run_id, token, interval
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"trainlab-heartbeat-{run_id}")
        self._thread.start()

    def _beat(self) -> None:
        conn = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None)
        try:
            while not self._stop.wait(self.interval):
                try:
                    n = conn.execute("UPDATE leases SET heartbeat=? WHERE run_id=? AND token=?",
                                     (time.time(), self.run_id, self.token)).rowcount
                except sqlite3.Error as exc:  # a busy or full disk: try again next beat
                    log.warning("run %s: heartbeat not written: %s", self.run_id, exc)
                    continue
                if n == 0:
                    self.lost.set()
                    return
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
