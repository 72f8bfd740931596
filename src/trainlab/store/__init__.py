"""The run store: SQLite (WAL) runs and metrics, and artifact files beside them."""

from trainlab.store.store import (
    STATUSES,
    RunRecord,
    RunStore,
    atomic_write_bytes,
    default_store_path,
)

__all__ = ["STATUSES", "RunRecord", "RunStore", "atomic_write_bytes", "default_store_path"]
