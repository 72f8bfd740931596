"""Spectral plasticity (row 47): the check against hand-made accuracy curves on both sides
of each threshold (the regularizer itself is tested in tests/models)."""

from __future__ import annotations

from trainlab.phenomena.lewandowski2025_spectral_plasticity import SpectralPlasticity


def _data(base_last: float, spec_last: float, sigma: float) -> dict:
    curve = lambda last: [0.9, 0.9, 0.9, 0.8, last, last, last]  # noqa: E731
    return {"baseline": {"accuracy": curve(base_last), "sigma_max": [5.0] * 7},
            "spectral": {"accuracy": curve(spec_last), "sigma_max": [sigma] * 7}}


def test_check_thresholds():
    phen = SpectralPlasticity()
    assert all(c.passed for c in phen.check(_data(0.5, 0.88, 1.5)))
    passed = [c.passed for c in phen.check(_data(0.75, 0.8, 2.5))]
    # drop 0.15 < 0.2; spectral drop 0.1 > 0.05; gap 0.05 < 0.2; sigma 2.5 > 2
    assert passed == [False, False, False, False]
