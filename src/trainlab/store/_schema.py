"""The run store's SQLite schema and its version."""

SCHEMA_VERSION = 1

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
CREATE INDEX IF NOT EXISTS metrics_run_name_step ON metrics(run_id, name, step);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    path   TEXT NOT NULL,             -- relative to the store directory
    PRIMARY KEY (run_id, name)
);
"""
