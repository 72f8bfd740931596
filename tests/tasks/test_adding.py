"""The ``adding`` task: two marks, one in each half; the target is the marked sum (checked
by a plain loop); the constant-1 predictor's MSE is 1/6; determinism and errors."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.tasks import TASKS, build_task
from trainlab.tasks.adding import adding_problem


def test_marks_and_targets_by_hand():
    x, y = adding_problem(200, 11, generator=torch.Generator().manual_seed(0))
    assert x.shape == (200, 11, 2) and y.shape == (200, 1)
    for i in range(200):
        marked = [t for t in range(11) if x[i, t, 1] == 1.0]
        assert len(marked) == 2 and marked[0] < 5 <= marked[1]  # one mark in each half
        assert set(x[i, :, 1].tolist()) == {0.0, 1.0}
        assert y[i, 0].item() == pytest.approx(float(x[i, marked[0], 0] + x[i, marked[1], 0]))
    assert x[..., 0].min() >= 0 and x[..., 0].max() < 1


def test_task_statistics_and_baseline():
    t = build_task("adding", length=20, n_train=20000, n_test=100, data_seed=3)
    assert t.kind == "regression" and t.default_model == "rnn" and t.input_shape == (20, 2)
    mse = (t.y_train - 1).pow(2).mean().item()  # sum of two U(0, 1): mean 1, variance 1/6
    assert mse == pytest.approx(1 / 6, rel=0.03) and t.info["baseline_mse"] == pytest.approx(1 / 6)
    assert t.y_train.mean().item() == pytest.approx(1.0, abs=0.01)
    again = build_task("adding", length=20, n_train=20000, n_test=100, data_seed=3)
    assert torch.equal(again.x_test, t.x_test)


def test_registered_and_errors():
    assert TASKS.entry("adding").papers == (31,)
    with pytest.raises(ConfigError, match="length"):
        adding_problem(4, 1)
    with pytest.raises(ConfigError, match="n_train"):
        build_task("adding", n_train=0)
