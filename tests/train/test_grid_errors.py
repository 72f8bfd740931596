"""Errors raised in a grid's worker processes reach the parent intact (they are pickled)."""

import pickle

from trainlab.errors import ConfigError, UnknownNameError


def test_trainlab_errors_survive_pickling():
    err = UnknownNameError("activation", "relux", ["relu", "gelu"])
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is UnknownNameError and str(back) == str(err)
    assert back.close == err.close and "Did you mean 'relu'" in str(back)
    assert str(pickle.loads(pickle.dumps(ConfigError("x must be 1")))) == "x must be 1"
