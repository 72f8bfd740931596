"""The run store: SQLite (WAL) runs and metrics, artifact files beside them, run ownership."""

from trainlab.store.lease import LeaseLostError, RunOwnedError
from trainlab.store.store import (
    RECORDED,
    STATUSES,
    RunRecord,
    RunStore,
    atomic_write_bytes,
    check_run_id,
    default_store_path,
)

__all__ = ["RECORDED", "STATUSES", "LeaseLostError", "RunOwnedError", "RunRecord", "RunStore",
           "atomic_write_bytes", "check_run_id", "default_store_path"]
