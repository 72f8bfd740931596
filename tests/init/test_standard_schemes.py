"""The Xavier/Kaiming schemes of ``trainlab.init.standard`` draw with public tensor methods
(torch.nn.init takes a ``generator`` only from torch 2.2): the same draws as torch.nn.init's
where torch has the argument, and the closed-form variances on every torch."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.init import standard

SCHEMES = {
    "xavier_uniform_": dict(gain=0.7),
    "xavier_normal_": dict(gain=1.3),
    "kaiming_uniform_": dict(a=0.2, mode="fan_out", nonlinearity="leaky_relu"),
    "kaiming_normal_": dict(mode="fan_in", nonlinearity="relu"),
}


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("shape", [(5, 7), (4, 3, 3, 2)])
def test_same_draws_as_torch_nn_init(name, shape):
    ref_fn = getattr(nn.init, name)
    if "generator" not in inspect.signature(ref_fn).parameters:
        pytest.skip(f"torch {torch.__version__}'s nn.init.{name} takes no generator (< 2.2)")
    ours = getattr(standard, name)(torch.empty(shape, dtype=torch.float64),
                                   generator=torch.Generator().manual_seed(3), **SCHEMES[name])
    ref = ref_fn(torch.empty(shape, dtype=torch.float64),
                 generator=torch.Generator().manual_seed(3), **SCHEMES[name])
    assert torch.equal(ours, ref)


def _expected_std(name: str, fan_in: int, fan_out: int) -> float:
    kw = SCHEMES[name]
    if name.startswith("xavier"):
        return kw["gain"] * math.sqrt(2.0 / (fan_in + fan_out))
    fan = fan_in if kw["mode"] == "fan_in" else fan_out
    return nn.init.calculate_gain(kw["nonlinearity"], kw.get("a", 0.0)) / math.sqrt(fan)


@pytest.mark.parametrize("name", SCHEMES)
def test_closed_form_spread_and_no_global_rng(name):
    shape = (300, 40, 3)  # fan_in 120, fan_out 900, 36000 draws
    state = torch.random.get_rng_state()
    w = getattr(standard, name)(torch.empty(shape, dtype=torch.float64),
                                generator=torch.Generator().manual_seed(0), **SCHEMES[name])
    assert torch.equal(state, torch.random.get_rng_state())
    std = _expected_std(name, 120, 900)
    # the sample std of n draws has relative standard error about 1/sqrt(2n) <= 0.004
    assert abs(w.std().item() / std - 1.0) < 0.02
    if name.endswith("uniform_"):
        bound = math.sqrt(3.0) * std
        assert w.abs().max().item() <= bound
        assert w.abs().max().item() > 0.99 * bound


def test_bad_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="'mode'"):
        standard.kaiming_normal_(torch.empty(3, 4), mode="fan_avg")


def test_empty_tensor_is_left_as_is():
    assert standard.kaiming_uniform_(torch.empty(0, 4)).shape == (0, 4)
