"""Grids on a real local Ray (2 CPUs): the same numbers, bit for bit, as the local executor;
the driver owns the store; a lost worker's point is submitted again and recorded."""

import os
import sys

import numpy as np
import pytest
import ray
from ray import cloudpickle

from trainlab.integrations.ray import RayExecutor
from trainlab.probes import fused
from trainlab.store import RunStore
from trainlab.train import RunConfig
from trainlab.train.grid import SerialExecutor, expand_grid, parse_grid, run_grid

pytestmark = pytest.mark.slow  # starting Ray takes seconds


def crash_once(job):
    """Kill the worker process on the first attempt of job 1 (a real lost worker)."""
    index, marker = job
    if index == 1 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return index * 10


@pytest.fixture(scope="module")
def local_ray():
    # the test module is not importable by name in Ray's workers: ship its functions by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # "local": a Ray of this test's own, not the latest cluster another process started on
    # this machine (Ray's default), whose workers would run another checkout's code and
    # environment
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    # the workers load the economy sums' C library from this session's cache instead of each
    # compiling it (on a loaded machine a worker's compile once ran past its time limit, and
    # that worker took the eager path: other last bits than the local grid)
    if fused.library() is not None:  # None: no compiler here (warned), nothing to build
        fused.build()
    yield
    ray.shutdown()


def test_ray_grid_equals_the_local_grid_bit_for_bit(tmp_path, local_ray):
    base = RunConfig(task="teacher-linear", model="mlp", model_params={"width": 8}, steps=6,
                     batch_size=16, every=2, probes="grad-norm,weight-norm",
                     schedule="constant", schedule_params={})
    configs = expand_grid(base, parse_grid(["lr=0.01,0.03"]))
    local = run_grid(configs, tmp_path / "local", SerialExecutor())
    executor = RayExecutor()  # uses the Ray started by the fixture
    remote = run_grid(configs, tmp_path / "ray", executor)
    assert [s for _, s in remote] == ["completed", "completed"]
    a, b = RunStore(tmp_path / "local"), RunStore(tmp_path / "ray")
    for (ia, _), (ib, _) in zip(local, remote):
        ma, mb = a.metrics(ia), b.metrics(ib)
        assert ma.keys() == mb.keys() and "grad_norm" in ma
        for name in ma:
            assert np.array_equal(ma[name][0], mb[name][0]), name
            assert np.array_equal(ma[name][1], mb[name][1]), name  # bit for bit
        ra, rb = a.get_run(ia), b.get_run(ib)
        assert (ra.name, ra.config, ra.seed) == (rb.name, rb.config, rb.seed)
        assert rb.summary["attempts"] == 1 and rb.summary["final_loss"] == ra.summary[
            "final_loss"]
        assert b.artifact(ib, "report").exists()


def test_a_lost_worker_is_retried_and_counted(tmp_path, local_ray, caplog):
    executor = RayExecutor(max_attempts=2)
    marker = str(tmp_path / "crashed")
    assert executor.map(crash_once, [(0, marker), (1, marker)]) == [0, 10]
    assert executor.attempts == [1, 2]
    assert any("Ray worker lost" in r.getMessage() for r in caplog.records)


def test_address_without_the_ray_executor_is_a_one_line_error(tmp_path, capsys):
    from trainlab.cli import main

    assert main(["compare", "--grid", "lr=0.1", "--address", "auto", "--store",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--executor ray" in err


@pytest.mark.parametrize(("address", "num_cpus", "want"), [
    (None, 3, {"address": "local", "num_cpus": 3}),  # never the latest cluster on the machine
    ("auto", None, {"address": "auto"}),
    ("ray://head:10001", None, {"address": "ray://head:10001"}),
])
def test_the_address_given_to_ray_init(monkeypatch, address, num_cpus, want):
    import trainlab.integrations.ray as module

    calls = []

    class FakeRay:
        def is_initialized(self):
            return False

        def init(self, **kwargs):
            calls.append(kwargs)

        def shutdown(self):
            calls.append("shutdown")

    monkeypatch.setattr(module, "_ray", FakeRay)
    monkeypatch.setattr(RayExecutor, "_map", lambda self, ray, fn, jobs: [fn(j) for j in jobs])
    assert RayExecutor(address, num_cpus=num_cpus).map(lambda j: j + 1, [1, 2]) == [2, 3]
    assert calls == [{"include_dashboard": False, "log_to_driver": False, **want}, "shutdown"]
