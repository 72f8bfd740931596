"""grokfast (row 101): the check on hand-made step counts (median ratio, separation beyond
the seed spread, every filtered run reaching 95%)."""

from __future__ import annotations

from trainlab.phenomena.lee2024_grokfast import Grokfast


def test_check_on_hand_made_counts():
    good = Grokfast().check({"cap": 3000, "baseline": [500, 600, 700],
                             "grokfast": [100, 150, 200]})
    assert all(c.passed for c in good) and abs(good[0].measured - 0.25) < 1e-12
    overlap = Grokfast().check({"cap": 3000, "baseline": [300, 600, 700],
                                "grokfast": [100, 150, 400]})
    assert [c.passed for c in overlap] == [True, False, True]
    capped = Grokfast().check({"cap": 3000, "baseline": [3000, 3000, 3000],
                               "grokfast": [100, 3000, 200]})
    assert not capped[2].passed


def test_regression_guard_baseline_groks():
    """Guard against the full path's recorded number: seed 0's AdamW baseline reached 95%
    validation accuracy at step 515 (the setting groks; Grokfast's 1358 is not rerun here)."""
    steps = Grokfast()._steps_to_generalize("adamw", 0, 700)
    assert abs(steps - 515) <= 5
