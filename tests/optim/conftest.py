"""Fixtures for the closure, estimator and procedure tests."""

from __future__ import annotations

import warnings

import pytest
import torch

from ._tiny_mlp import batch, tiny_mlp

# torch's forward-mode AD loads its jvp decompositions on first use through torch.jit.script,
# which warns (DeprecationWarning) once per process; load them here so that warning, which is
# torch's and not ours, does not fail the first test that happens to use forward-mode AD.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    torch.func.jvp(torch.sin, (torch.zeros(1),), (torch.ones(1),))


@pytest.fixture
def problem():
    x, y = batch()
    return tiny_mlp(), x, y
