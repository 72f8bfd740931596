"""grokfast (row 101): the check on hand-made step counts (median ratio, separation beyond
the seed spread, every filtered run reaching 95%, the baseline's memorize-first precondition),
and the digits split of the paper's MNIST setting."""

from __future__ import annotations

import math

from trainlab.phenomena.lee2024_grokfast import Grokfast, digits_split


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


def test_precondition_memorize_first():
    data = {"cap": 3000, "baseline": [500, 600, 700], "grokfast": [100, 150, 200]}
    grok = Grokfast().check({**data, "baseline_val_at_mem": [0.3, 0.2, 0.45]})
    assert grok[3].passed and abs(grok[3].measured - 0.45) < 1e-12
    together = Grokfast().check({**data, "baseline_val_at_mem": [0.3, 0.9, 0.2]})
    assert not together[3].passed  # one seed generalizes as it fits: not the grokking regime
    never = Grokfast().check({**data, "baseline_val_at_mem": [0.3, None, 0.2]})
    assert not never[3].passed and math.isnan(never[3].measured)


def test_digits_split_is_the_papers_size_and_seeded():
    x, y, xv, yv = digits_split(0)
    assert x.shape == (1000, 64) and xv.shape == (797, 64) and len(y) == 1000
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0  # MNIST ToTensor's range
    x1 = digits_split(1)[0]
    assert not bool((x1 == x).all()) and bool((digits_split(0)[0] == x).all())
