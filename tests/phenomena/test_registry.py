"""Every registered phenomenon declares what it reproduces and its quick run passes: its
claim, or, where it declares a ``quick_reference`` (the claim cannot show in 20 s), the
regression guard against the numbers recorded from the same code path. Its data can be
recorded whole and its figure redrawn from the recorded data (``reproduce --from-store``).
No test here expects a FAIL: an experiment that breaks turns its test red."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from trainlab.phenomena import PHENOMENA, Check, Outcome, Phenomenon
from trainlab.store import json_codec

# Honest FAILs at the paper's setting whose regression guard compares a run with numbers
# recorded from the full code path in their own test file (rather than a quick_reference):
# the shared test runs them and checks their declarations, and the guard there turns red
# when the experiment changes.
_GUARDED_IN_OWN_FILE = {"tiny-subspace": "test_gurari2018_tiny_subspace.py"}


@pytest.mark.parametrize("name", PHENOMENA.names())
def test_quick_run_passes_its_claim_or_its_guard(name):
    entry = PHENOMENA.entry(name)
    phen = entry.obj()
    assert isinstance(phen, Phenomenon) and phen.name == name
    assert phen.claim and set(phen.papers) == set(entry.papers)
    assert "reproduces" in entry.flags
    assert phen.paper_figure, "declare the paper's figure or table (paper_figure)"
    assert phen.scale_downs, "declare the scale-downs from the paper (scale_downs)"
    guarded_elsewhere = name in _GUARDED_IN_OWN_FILE
    if guarded_elsewhere:
        assert not entry.flags["reproduces"] and not phen.quick_reference
        own = Path(__file__).with_name(_GUARDED_IN_OWN_FILE[name])
        assert "record" in own.read_text(), f"{own.name} must hold the regression guard"
    outcome, data = phen.reproduce(quick=True, seed=0)
    assert outcome.checks and all(isinstance(c, Check) for c in outcome.checks)
    for c in outcome.checks:
        assert isinstance(c.passed, bool) and c.expected
        assert math.isfinite(c.measured) or not c.passed
    json.dumps(outcome.to_json())  # plain values
    details = "; ".join(f"{c.name}={c.measured:.6g} ({c.expected})"
                        for c in outcome.checks + outcome.guard)
    if guarded_elsewhere:
        pass  # the verdict is guarded against recorded numbers in its own test file
    elif phen.quick_reference:
        assert set(phen.quick_reference) <= set(outcome.numbers), "guard names unknown checks"
        assert outcome.guard_passed, details
    else:
        assert outcome.passed, details
    # what `reproduce` records: all of the data, from which `--from-store` redraws the figure
    recorded = json_codec.loads(json_codec.dumps(data, what=name))
    assert json_codec.omitted(recorded) == [], "run() returns data the store cannot record"
    for fig in (phen.plot(data), phen.plot(recorded)):
        if fig is not None:
            import matplotlib.pyplot as plt

            plt.close(fig)


def test_outcome_passes_only_with_all_checks():
    ok, bad = Check("a", 1.0, "> 0", True), Check("b", -1.0, "> 0", False)
    assert Outcome("x", [ok]).passed
    assert not Outcome("x", [ok, bad]).passed
    assert not Outcome("x", []).passed
    assert not Outcome("x", [ok], error="boom").passed


def test_outcome_json_round_trip_keeps_nan_spread():
    o = Outcome("x", [Check("a", 1.5, "> 0", True, 0.25, 3), Check("b", 2.0, "> 0", True)],
                seconds=1.25, quick=True, seed=4)
    back = Outcome.from_json(json.loads(json.dumps(o.to_json())))
    assert back.checks[0] == o.checks[0] and back.mode == "quick" and back.seed == 4
    assert math.isnan(back.checks[1].spread) and back.checks[1].seeds == 1


class _Guarded(Phenomenon):
    name = "guarded"
    claim = "x"
    quick_reference = {"value": 2.0}
    quick_rtol = 0.1

    def run(self, *, quick=False, seed=0):
        return {"v": 2.0 + seed}

    def check(self, data):
        return [Check("value", data["v"], "> 100", data["v"] > 100)]


def test_guard_compares_with_the_recorded_numbers():
    ok, _ = _Guarded().reproduce(quick=True, seed=0)
    assert not ok.passed and ok.guard_passed and ok.guard[0].name == "guard:value"
    moved, _ = _Guarded().reproduce(quick=True, seed=1)  # 3.0 vs 2.0 +- 0.2
    assert not moved.guard_passed
    full, _ = _Guarded().reproduce(quick=False, seed=0)
    assert full.guard == []  # the guard is for quick runs only


def test_seed_summary():
    from trainlab.phenomena._base import seed_summary

    mean, spread, n = seed_summary([1.0, 2.0, 4.0])
    assert (mean, spread, n) == (pytest.approx(7 / 3), 1.5, 3)
    assert math.isnan(seed_summary([3.0])[1])


def test_seed_effect_check_needs_the_effect_to_exceed_the_seed_spread():
    from trainlab.phenomena._base import seed_effect_check

    ok = seed_effect_check("d", [0.3, 0.5, 0.4])  # mean 0.4 > half-range 0.1
    assert ok.passed and ok.measured == pytest.approx(0.4) and ok.spread == pytest.approx(0.1)
    assert ok.seeds == 3
    assert not seed_effect_check("d", [-0.1, 0.5, 0.2]).passed  # mean 0.2 < half-range 0.3
    assert not seed_effect_check("r", [1.2, 1.3, 1.1], baseline=1.3).passed
    assert seed_effect_check("r", [1.2], baseline=1.0).passed  # one seed: above baseline
    assert not seed_effect_check("r", [0.9], baseline=1.0).passed
