"""Every registered phenomenon runs in quick mode and its verdict matches its registry flag:
PASS for ``reproduces=True``, FAIL (honestly reported) for ``reproduces=False``."""

from __future__ import annotations

import json
import math

import pytest

from trainlab.phenomena import PHENOMENA, Check, Outcome, Phenomenon


@pytest.mark.parametrize("name", PHENOMENA.names())
def test_quick_run_matches_its_flag(name):
    entry = PHENOMENA.entry(name)
    phen = entry.obj()
    assert isinstance(phen, Phenomenon) and phen.name == name
    assert phen.claim and set(phen.papers) == set(entry.papers)
    assert "reproduces" in entry.flags
    outcome, data = phen.reproduce(quick=True, seed=0)
    assert outcome.checks and all(isinstance(c, Check) for c in outcome.checks)
    for c in outcome.checks:
        assert isinstance(c.passed, bool) and c.expected
        assert math.isfinite(c.measured) or not c.passed
    json.dumps(outcome.numbers)  # plain floats
    details = "; ".join(f"{c.name}={c.measured:.4g} ({c.expected})" for c in outcome.checks)
    assert outcome.passed == entry.flags["reproduces"], details
    fig = phen.plot(data)
    if fig is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_outcome_passes_only_with_all_checks():
    ok, bad = Check("a", 1.0, "> 0", True), Check("b", -1.0, "> 0", False)
    assert Outcome("x", [ok]).passed
    assert not Outcome("x", [ok, bad]).passed
    assert not Outcome("x", []).passed
