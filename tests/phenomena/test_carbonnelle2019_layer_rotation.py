"""layer-rotation (row 56): the authors' per-layer rate multipliers, and the check on
hand-made runs (precondition, rotation control, every configuration worse than the
reference beyond the seed spread)."""

from __future__ import annotations

import pytest

from trainlab.phenomena.carbonnelle2019_layer_rotation import (
    LayerRotation,
    layer_rate_multipliers,
)


def test_multipliers_follow_the_authors_alpha_rule():
    assert layer_rate_multipliers(3, 0.0) == [1.0, 1.0, 1.0]
    up = layer_rate_multipliers(3, 0.6)  # first layer slowed to (1 - alpha)^5
    assert up[0] == pytest.approx(0.4**5) and up[1] == pytest.approx(0.4**2.5) and up[2] == 1.0
    down = layer_rate_multipliers(3, -0.6)  # last layer slowed to (1 + alpha)^5
    assert down[0] == 1.0 and down[2] == pytest.approx(0.4**5)


def _row(tests, rots, train=1.0):
    configs = LayerRotation.CONFIGS
    return [{"train_acc": train, "test_acc": t, "rotation": [r, r]}
            for t, r, _ in zip(tests, rots, configs, strict=True)]


def _data(rows):
    return {"configs": [list(c) for c in LayerRotation.CONFIGS], "seeds": list(range(len(rows))),
            "runs": rows}


def test_check_on_hand_made_runs():
    rots = [0.9, 0.5, 0.2, 0.6, 0.6]  # reference, 3^-4, 3^-5, alpha -0.6, +0.6
    good = LayerRotation().check(_data([_row([0.70, 0.65, 0.60, 0.66, 0.64], rots),
                                        _row([0.71, 0.66, 0.61, 0.65, 0.63], rots)]))
    assert [c.passed for c in good] == [True, True, True, True]
    assert good[2].measured == pytest.approx(-0.04)  # alpha -0.6: mean -0.05, half-range 0.01
    assert good[3].measured == pytest.approx(0.10)
    # one configuration as good as the reference on one seed: within the spread, FAIL
    tie = LayerRotation().check(_data([_row([0.70, 0.65, 0.60, 0.70, 0.64], rots),
                                       _row([0.71, 0.66, 0.61, 0.65, 0.63], rots)]))
    assert not tie[2].passed
    # an unfitted run breaks the precondition; rotation not ordered by rho(0) breaks (b)
    bad = LayerRotation().check(_data([_row([0.70, 0.65, 0.60, 0.66, 0.64],
                                            [0.2, 0.5, 0.9, 0.6, 0.6], train=0.8)]))
    assert [c.passed for c in bad[:2]] == [False, False]
