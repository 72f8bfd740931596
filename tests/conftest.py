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
