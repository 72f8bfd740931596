"""The run store's SQLite schema, its version, and the migrations from older versions."""

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    config    TEXT NOT NULL,          -- JSON of the RunConfig (or the caller's dict)
    status    TEXT NOT NULL,          -- running | completed | diverged | interrupted | failed
    seed      INTEGER,
    created   REAL NOT NULL,          -- unix time
    updated   REAL NOT NULL,
    versions  TEXT NOT NULL,          -- JSON: trainlab, torch, python
    summary   TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step   INTEGER NOT NULL,
    name   TEXT NOT NULL,
    value  REAL                       -- NULL stores NaN
);
CREATE UNIQUE INDEX IF NOT EXISTS metrics_unique ON metrics(run_id, name, step);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    path   TEXT NOT NULL,             -- relative to the store directory
    sha256 TEXT,                      -- hex digest of the file's bytes when it was recorded
    PRIMARY KEY (run_id, name)
);
"""

# the one process that owns a running run: token (random; every write of the owner checks
# it), pid and host of the owner, heartbeat (unix time of its last sign of life)
LEASES = """
CREATE TABLE IF NOT EXISTS leases (
    run_id    TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    token     TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    host      TEXT NOT NULL,
    heartbeat REAL NOT NULL
)"""

# version -> statements that bring a store of that version to the next one
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE artifacts ADD COLUMN sha256 TEXT",
        # keep the last written row of each (run, step, name): the one a resume wrote
        "DELETE FROM metrics WHERE rowid NOT IN "
        "(SELECT MAX(rowid) FROM metrics GROUP BY run_id, name, step)",
        "DROP INDEX IF EXISTS metrics_run_name_step",
        "CREATE UNIQUE INDEX IF NOT EXISTS metrics_unique ON metrics(run_id, name, step)",
        LEASES,
    ),
}
