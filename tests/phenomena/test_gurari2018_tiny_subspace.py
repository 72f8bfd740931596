"""tiny-subspace (row 28): the check on hand-made overlap curves (late share against the
random baseline, the rise from step 0, persistence from the second half on)."""

from __future__ import annotations

from trainlab.phenomena.gurari2018_tiny_subspace import TinySubspace


def _run(first, late, pers, dim=2000):
    return {"steps": [0, 100, 200, 300, 400], "overlap": [first, 0.3, late, late, late],
            "persistence": [0.1, 0.2, pers, pers], "total": 400, "dim": dim, "lag_steps": 100}


def test_check_on_hand_made_runs():
    good = TinySubspace().check({"seeds": [_run(0.2, 0.8, 0.9)] * 3, "k": 10})
    assert all(c.passed for c in good) and abs(good[0].measured - 0.8) < 1e-12
    assert abs(good[1].measured - 0.6) < 1e-12
    assert [c.passed for c in TinySubspace().check(
        {"seeds": [_run(0.9, 0.8, 0.9)], "k": 10})] == [True, False, True]
    # a share of 0.6 in a 10-of-1000 subspace is below 100 k/P = 1: not "tiny"
    assert not TinySubspace().check({"seeds": [_run(0.2, 0.6, 0.9, dim=1000)], "k": 10})[0].passed
    assert not TinySubspace().check({"seeds": [_run(0.2, 0.8, 0.3)], "k": 10})[2].passed
