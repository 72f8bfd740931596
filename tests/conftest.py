"""Suite-wide settings: one thread per worker (xdist runs two), deterministic algorithms,
and a private cache directory (generated datasets, the C library of the economy sums)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


_SUITE_CACHE = "_TRAINLAB_SUITE_CACHE"  # the cache folder this suite made (not the user's)


def pytest_configure(config):
    """A private ``TRAINLAB_CACHE`` for this run (generated datasets, the economy sums' C
    library), set before collection: test modules build the C library at import time (their
    skip marks ask whether it loads), which must not write to the user's cache. Under xdist
    each worker gets a folder of its own inside the controller's; a ``TRAINLAB_CACHE`` the
    user set is kept."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    ours = os.environ.get(_SUITE_CACHE)
    if ours is not None and os.environ.get("TRAINLAB_CACHE") == ours and worker:
        path = os.path.join(ours, worker)  # inherited from this run's controller
        os.makedirs(path, mode=0o700, exist_ok=True)
    elif "TRAINLAB_CACHE" not in os.environ:
        path = tempfile.mkdtemp(prefix="trainlab-test-cache-")
        os.environ[_SUITE_CACHE] = path
        config.add_cleanup(lambda: shutil.rmtree(path, ignore_errors=True))
    else:
        return
    os.environ["TRAINLAB_CACHE"] = path


@pytest.fixture
def ranks():
    """``ranks(fn, *args, world=2, timeout=60)``: ``fn(*args)`` in ``world`` forked processes,
    each in one gloo process group with torchrun's environment set
    (:func:`trainlab.train.distributed.spawn`'s worker). A rank that is still running after
    ``timeout`` seconds (a hang) is killed and the test fails instead of blocking the suite."""
    import time

    import torch.multiprocessing as mp

    from trainlab.registry import all_registries
    from trainlab.train import distributed

    # imported once here, before the fork, not once in every rank (each import costs seconds)
    all_registries()
    torch.optim.SGD([torch.zeros(1, requires_grad=True)]).step()

    def run(fn, *args, world=2, timeout=60.0):
        procs = mp.start_processes(distributed._worker, args=(fn, world, distributed.free_port(),
                                                               "gloo", args),
                                   nprocs=world, join=False, start_method="fork")
        deadline = time.monotonic() + timeout
        while not procs.join(timeout=max(0.05, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                for p in procs.processes:
                    if p.is_alive():
                        p.kill()
                pytest.fail(f"data-parallel ranks still running after {timeout} s (a hang)")

    return run
