"""Every probe of the presets, on one context: the model (weights, grads, modes, buffers,
RNG) and the optimizer state are bit-identical afterwards, and every value is a finite
scalar."""

from __future__ import annotations

import math

import pytest
import torch
from _probe_helpers import assert_unchanged, batch, context, mlp, snapshot

from trainlab.probes import PRESETS, build_probes, expand


@pytest.mark.parametrize("name", expand("full"))
def test_probe_leaves_everything_as_found(name):
    model = mlp()
    x, y = batch()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    ctx = context(model, x, y, optimizer=opt)
    snap = snapshot(model)
    state = {id(p): {k: v.clone() for k, v in s.items()} for p, s in opt.state.items()}
    (probe,) = build_probes(name)
    out = probe.measure(ctx)
    assert_unchanged(model, snap)
    for p, s in opt.state.items():
        for k, v in s.items():
            assert torch.equal(v, state[id(p)][k])
    for key, value in out.items():
        v = float(value)
        assert math.isfinite(v), (key, v)


def test_presets_expand_to_registered_probes():
    # the batch loss is recorded by the Monitor itself, so no preset needs the loss probe
    assert set(PRESETS["economy"]) == {"grad-norm", "rotation", "update-ratio", "grad-noise"}
    assert set(PRESETS["economy"]) <= set(PRESETS["full"])
    assert PRESETS["standard"] == ("eval", "grad-norm", "weight-norm", "update-ratio",
                                   "rotation", "sharpness")
    assert [p.every for p in build_probes("economy", every=16)] == [16] * 4


def test_monitor_probe_spec_errors_are_one_line_config_errors():
    """A user's own loop gets the same one-line errors as the CLI (was a bare ValueError)."""
    from trainlab.errors import ConfigError, UnknownNameError
    from trainlab.probes import build_probes, parse_spec

    with pytest.raises(ConfigError, match="grad-norm@abc"):
        build_probes("grad-norm@abc")
    with pytest.raises(ConfigError, match="positive integer"):
        build_probes("grad-norm@0")
    with pytest.raises(UnknownNameError, match="grad-norm"):
        build_probes("grad-nrm")
    assert parse_spec("grad-norm,weight-norm@5,grad-norm@3") == (("grad-norm", 3),
                                                                 ("weight-norm", 5))
    assert [p.every for p in build_probes("grad-norm@3,grad-norm", every=7)] == [3]
