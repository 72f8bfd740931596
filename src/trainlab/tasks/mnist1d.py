"""MNIST-1D (Greydanus, 2020), generated procedurally by the ``mnist1d`` package and cached."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from trainlab.errors import check_range
from trainlab.tasks._task import TASKS, Task


def cache_dir() -> Path:
    """``$TRAINLAB_CACHE`` or ``~/.cache/trainlab``."""
    return Path(os.environ.get("TRAINLAB_CACHE", Path.home() / ".cache" / "trainlab"))


def _generate(num_samples: int, train_split: float, seed: int) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, train_split, seed
    state = np.random.get_state()  # the generator seeds numpy's global RNG: give it back
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}


def mnist1d(num_samples: int = 5000, train_split: float = 0.8, data_seed: int = 42) -> Task:
    """The MNIST-1D classification task: 40-dim signals, 10 classes (4000/1000 by default).

    Generated with the ``mnist1d`` package's defaults and cached under :func:`cache_dir`
    (the file is keyed by the arguments and written atomically).
    """
    check_range("num_samples", num_samples, low=10, owner="mnist1d")
    check_range("train_split", train_split, low=0.0, high=1.0, low_open=True, high_open=True,
                owner="mnist1d")
    key = json.dumps([num_samples, train_split, data_seed])
    path = cache_dir() / f"mnist1d-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    else:
        arrays = _generate(num_samples, train_split, data_seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    return Task(
        "mnist1d", "classification",
        torch.from_numpy(arrays["x"]).float(), torch.from_numpy(arrays["y"]).long(),
        torch.from_numpy(arrays["x_test"]).float(), torch.from_numpy(arrays["y_test"]).long(),
        num_outputs=10, default_model="mlp",
    )


TASKS.register("mnist1d", mnist1d, summary="MNIST-1D, procedurally generated 1-D digits")
