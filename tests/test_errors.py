"""The shared validators of trainlab.errors: what passes, and what each error names."""

from __future__ import annotations

import math

import pytest

from trainlab.errors import ConfigError, check_betas, check_range


def test_check_range_bounds_and_nan():
    assert check_range("lr", 0.0, low=0.0) == 0.0
    with pytest.raises(ConfigError, match=r"'lr' parameter of Adam must be in the range \(0"):
        check_range("lr", 0.0, low=0.0, low_open=True, owner="Adam")
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        check_range("beta", 1.0, low=0.0, high=1.0, high_open=True)
    with pytest.raises(ConfigError):
        check_range("eps", math.nan, low=0.0)


def test_check_betas_count_and_range():
    assert check_betas([0.9, 0.999], 2, owner="X") == (0.9, 0.999)
    with pytest.raises(ConfigError, match=r"'betas' parameter of X must have 3 entries"):
        check_betas((0.9, 0.999), 3, owner="X")
    with pytest.raises(ConfigError, match=r"'beta2' parameter of X"):
        check_betas((0.9, 1.0), 2, owner="X")


def test_check_choice_names_parameter_choices_and_value():
    import pytest

    from trainlab.errors import ConfigError, check_choice

    assert check_choice("mode", "fan_in", ("fan_in", "fan_out")) == "fan_in"
    with pytest.raises(ConfigError) as err:
        check_choice("mode", "fan", ("fan_in", "fan_out"), owner="kaiming")
    msg = str(err.value)
    assert "'mode' parameter of kaiming" in msg and "'fan_in', 'fan_out'" in msg
    assert "Got 'fan'" in msg and "\n" not in msg
    # True == 1 in Python: a boolean is not accepted for an integer choice
    with pytest.raises(ConfigError):
        check_choice("k", True, (1, 2))
    assert check_choice("k", 1, (1, 2)) == 1
