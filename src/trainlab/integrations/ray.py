"""Ray: grid points as Ray tasks, on a laptop (a local Ray) or a cluster.

``trainlab compare --grid ... --executor ray [--address ray://head:10001]`` runs each grid
point as a Ray task. Workers never open the run store: each trains in a private temporary
store and sends back what it recorded (config, status, summary, every metric row), and the
driver writes it into its own store (:func:`trainlab.train.grid.run_grid`), so the SQLite
store stays correct whatever the cluster's file systems. The numbers are those of the local
executor, bit for bit (same configs, same seeds; tested).

A task whose worker process or node dies (not a Python error in the run: that is raised) is
submitted again, up to ``max_attempts`` times in all; each retry is logged on the
``trainlab`` logger and the number of attempts is recorded in the run's summary
(``attempts``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainlab.errors import ConfigError, TrainlabError, check_range
from trainlab.log import LOGGER


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--executor ray needs Ray: pip install 'trainlab[ray]'") from exc
    return ray


class RayExecutor:
    """Maps a function over jobs as Ray tasks (one CPU each), the results in job order.

    Args:
        address: a Ray cluster's address (``"auto"``, ``"ray://host:10001"``); ``None``
            starts a new local Ray for the call (or uses one already initialized in this
            process). Not Ray's own default for ``None``, which attaches to the latest
            cluster started on the machine (``/tmp/ray/ray_current_cluster``), whoever
            started it: a run would then train in another program's workers.
        num_cpus: CPUs of a local Ray started here (default: all).
        max_attempts: submissions of a job whose worker died, in all (>= 1).

    After :meth:`map`, :attr:`attempts` holds each job's number of submissions.
    """

    #: the driver, not the workers, writes the run store (see run_grid)
    owns_store = False

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 max_attempts: int = 3):
        check_range("max_attempts", max_attempts, low=1, owner="RayExecutor")
        if num_cpus is not None:
            check_range("num_cpus", num_cpus, low=1, owner="RayExecutor")
        self.address, self.num_cpus, self.max_attempts = address, num_cpus, max_attempts
        self.attempts: list[int] = []

    def map(self, fn: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
        ray = _ray()
        started = not ray.is_initialized()
        if started:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:  # a new local Ray, never one another process started
                kwargs["num_cpus"] = self.num_cpus
            ray.init(address="local" if self.address is None else self.address, **kwargs)
        try:
            return self._map(ray, fn, jobs)
        finally:
            if started:
                ray.shutdown()

    def _map(self, ray: Any, fn: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        lost = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.LocalRayletDiedError)
        pending = {remote.remote(job): (i, 1) for i, job in enumerate(jobs)}
        results: list[Any] = [None] * len(jobs)
        self.attempts = [0] * len(jobs)
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            i, attempt = pending.pop(ref)
            self.attempts[i] = attempt
            try:
                results[i] = ray.get(ref)
            except lost as exc:
                if attempt >= self.max_attempts:
                    raise TrainlabError(f"grid point {i}: its Ray worker was lost "
                                        f"{attempt} times: {type(exc).__name__}") from exc
                LOGGER.warning("grid point %d: Ray worker lost (%s); submitting it again "
                               "(attempt %d of %d)", i, type(exc).__name__, attempt + 1,
                               self.max_attempts)
                pending[remote.remote(jobs[i])] = (i, attempt + 1)
        return results
