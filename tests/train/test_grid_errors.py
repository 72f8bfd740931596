"""Errors raised in a grid's worker processes reach the parent intact (they are pickled)."""

import pickle

import pytest

from trainlab.errors import ConfigError, UnknownNameError


def test_trainlab_errors_survive_pickling():
    err = UnknownNameError("activation", "relux", ["relu", "gelu"])
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is UnknownNameError and str(back) == str(err)
    assert back.close == err.close and "Did you mean 'relu'" in str(back)
    assert str(pickle.loads(pickle.dumps(ConfigError("x must be 1")))) == "x must be 1"


def test_local_executor_rejects_a_thread_count_below_one():
    from trainlab.train.grid import LocalExecutor

    with pytest.raises(ConfigError, match="threads"):
        LocalExecutor(2, threads=0)
    assert LocalExecutor(2, threads=3).threads == 3
