"""kill -9 at random points of a real `trainlab run` process: the run is always `crashed`
(or `completed`), never has a duplicate metric row, and resumes to the very numbers of a run
never killed. TRAINLAB_KILL_TRIALS=20 runs the long version (default: 2 trials)."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np

from trainlab.cli import main
from trainlab.store import RunStore

ARGS = ["-q", "--no-report", "--task", "teacher-linear", "--model", "deep-linear",
        "-p", "task.n_train=64", "-p", "task.n_test=16", "-p", "model.width=8", "--optim",
        "sgd", "--lr", "0.01", "--schedule", "constant", "--steps", "400", "--batch-size", "8",
        "--probes", "grad-norm", "--every", "1", "--checkpoint-seconds", "0.3",
        "--flush-seconds", "0.02"]
CODE = ("import sys, torch; torch.set_num_threads(1); from trainlab.cli import main; "
        "sys.exit(main(sys.argv[1:]))")


def _last_step(root) -> int:
    """The last step whose metrics reached the store (-1: none yet)."""
    try:
        conn = sqlite3.connect(f"file:{root}/runs.sqlite?mode=ro", uri=True, timeout=5)
        try:
            last = conn.execute("SELECT MAX(step) FROM metrics").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return -1
    return -1 if last is None else last


def _kill_all(runs: list[tuple]) -> None:
    """Kill each ``(root, process, step)`` with SIGKILL once its metrics have reached
    ``step`` (a point of the training that does not depend on the machine's speed)."""
    waiting, deadline = list(runs), time.monotonic() + 300
    while waiting and time.monotonic() < deadline:
        for root, proc, step in list(waiting):
            if _last_step(root) >= step or proc.poll() is not None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                waiting.remove((root, proc, step))
        time.sleep(0.01)


def _check_and_resume(root, reference) -> str:
    """Check the run a killed process left, resume it and compare with ``reference``;
    returns the status it was left in."""
    store = RunStore(root)
    (run,) = store.list_runs()
    assert run.status in ("crashed", "completed"), run.status
    rows = store.count_metrics(run.id)
    assert rows == sum(len(s) for s, _ in store.metrics(run.id).values())  # no duplicates
    if run.status == "crashed":
        assert main(["run", "--resume", "latest", "--store", str(root), "-q",
                     "--no-report"]) == 0
    resumed = store.metrics(run.id)
    assert store.get_run(run.id).status == "completed"
    assert resumed.keys() == reference.keys()
    for name, (steps, values) in reference.items():
        assert np.array_equal(resumed[name][0], steps), name
        assert np.array_equal(resumed[name][1], values), name
    return run.status


def test_kill_9_leaves_a_crashed_resumable_run_without_duplicates(tmp_path):
    trials = int(os.environ.get("TRAINLAB_KILL_TRIALS", "2"))
    rng = random.Random(11)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([p for p in sys.path if p])}
    ref_args = ["run", "--store", str(tmp_path / "ref"), *ARGS]
    outcomes: list[str] = []
    for first in range(0, trials, 2):  # two processes at a time
        roots = [tmp_path / f"trial{i}" for i in range(first, min(first + 2, trials))]
        procs = [subprocess.Popen([sys.executable, "-c", CODE, "run", "--store", str(r), *ARGS],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for r in roots]
        _kill_all([(r, p, rng.randrange(10, 250)) for r, p in zip(roots, procs)])
        if first == 0:
            assert main(ref_args) == 0  # the reference: the same run, never killed
            ref_store = RunStore(tmp_path / "ref")
            reference = ref_store.metrics(ref_store.resolve("latest"))
        outcomes += [_check_and_resume(root, reference) for root in roots]
    print("kill -9 outcomes:", outcomes)
    assert "crashed" in outcomes
