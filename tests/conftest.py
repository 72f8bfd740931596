"""Suite-wide settings: one thread per worker (xdist runs two), deterministic algorithms,
and a private cache directory for generated datasets."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory):
    os.environ.setdefault("TRAINLAB_CACHE", str(tmp_path_factory.mktemp("trainlab-cache")))
    yield


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
