"""Grids of runs and the executors that run them.

An executor maps a picklable function over a list of picklable jobs; :class:`LocalExecutor`
uses one process per core. A cluster backend is another class with the same ``map``
method; one whose workers must not write the store (``owns_store = False``, e.g.
:class:`trainlab.integrations.ray.RayExecutor`) gets jobs that train in a private store and
return what they recorded, which the driver writes into its store (:func:`import_run`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

from trainlab.errors import ConfigError, check_range
from trainlab.train.config import RunConfig, build_config, parse_value


class Executor(Protocol):
    def map(self, fn: Callable[[Any], Any], jobs: list[Any]) -> list[Any]: ...


class SerialExecutor:
    """Runs jobs one after another in this process."""

    def map(self, fn: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
        return [fn(j) for j in jobs]


class LocalExecutor:
    """One worker process per core (``spawn`` start method: safe with torch's threads).

    ``threads``: torch threads per worker (default: the cores divided among the workers).
    A caller that needs results bit-identical to a serial run in this process passes this
    process's ``torch.get_num_threads()``: the reductions then split the same way.
    """

    def __init__(self, processes: int | None = None, threads: int | None = None):
        self.processes = processes or os.cpu_count() or 1
        if threads is not None:
            check_range("threads", threads, low=1, owner="LocalExecutor")
        self.threads = threads

    def map(self, fn: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
        if self.processes == 1 or len(jobs) <= 1:
            return SerialExecutor().map(fn, jobs)
        workers = min(self.processes, len(jobs))
        threads = self.threads or max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                 initializer=_limit_threads, initargs=(threads,)) as pool:
            return list(pool.map(fn, jobs))


def _limit_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["init=orthogonal,lsuv", "lr=0.1,0.01"]`` -> ``{"init": [...], "lr": [...]}``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"grid axes look like key=v1,v2; got {item!r}")
        grid[key.strip()] = [parse_value(v) for v in values.split(",")]
    return grid


def expand_grid(base: RunConfig, grid: dict[str, list[Any]]) -> list[RunConfig]:
    """The cartesian product of the axes over ``base`` (keys as in ``apply_overrides``).
    Each run is named after its grid point, e.g. ``init=lsuv,lr=0.1``."""
    configs = []
    for values in itertools.product(*grid.values()):
        assignments = [f"{k}={v}" for k, v in zip(grid, values)]
        configs.append(build_config(base.to_dict(), {"name": ",".join(assignments)},
                                    assignments))
    return configs


def _run_job(job: tuple[dict[str, Any], str]) -> tuple[str, str]:
    from trainlab.store import RunStore
    from trainlab.train.trainer import Trainer

    config, root = job
    result = Trainer(RunConfig.from_dict(config), store=RunStore(root)).run()
    return result.run_id, result.status


def _run_detached(config: dict[str, Any]) -> dict[str, Any]:
    """Train ``config`` in a private temporary store; return everything it recorded."""
    import tempfile

    from trainlab.store import RunStore
    from trainlab.train.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="trainlab-worker-") as tmp:
        store = RunStore(tmp)
        result = Trainer(RunConfig.from_dict(config), store=store, report=False).run()
        r = store.get_run(result.run_id)
        metrics = {name: (steps.tolist(), values.tolist())
                   for name, (steps, values) in store.metrics(result.run_id).items()}
        store.close()
    return {"config": r.config, "name": r.name, "seed": r.seed, "status": r.status,
            "summary": r.summary, "metrics": metrics}


def import_run(store: Any, recorded: dict[str, Any], *, report: bool = True,
               **summary_extra: Any) -> tuple[str, str]:
    """Write a run recorded elsewhere (by :func:`_run_detached`) into ``store``: a new run
    with the same config, name, seed, status, summary (plus ``summary_extra``) and metric
    rows, and its report. Returns ``(run id, status)``."""
    run_id = store.create_run(recorded["config"], name=recorded["name"], seed=recorded["seed"])
    rows = [(int(s), name, float(v)) for name, (steps, values) in recorded["metrics"].items()
            for s, v in zip(steps, values)]
    store.log_metrics(run_id, sorted(rows))
    store.set_status(run_id, recorded["status"], {**recorded["summary"], **summary_extra})
    if report:
        from trainlab.report import write_run_report

        write_run_report(store, run_id)
    return run_id, recorded["status"]


def run_grid(configs: list[RunConfig], store_root: str | Path,
             executor: Executor | None = None) -> list[tuple[str, str]]:
    """Run every config; returns (id, status). Each writes its own run into the store, or,
    with an executor whose workers do not own the store, sends it back to be written here."""
    executor = executor or LocalExecutor()
    if getattr(executor, "owns_store", True):
        return executor.map(_run_job, [(c.to_dict(), str(store_root)) for c in configs])
    from trainlab.store import RunStore

    recorded = executor.map(_run_detached, [c.to_dict() for c in configs])
    attempts = getattr(executor, "attempts", None) or [1] * len(recorded)
    store = RunStore(store_root)
    return [import_run(store, r, attempts=a) for r, a in zip(recorded, attempts)]
