"""Spectral plasticity (row 47): the check against hand-made accuracy and singular-value
curves on both sides of each threshold (the regularizer itself is tested in tests/models)."""

from __future__ import annotations

from trainlab.phenomena.lewandowski2025_spectral_plasticity import SpectralPlasticity


def _run(last: float, sigma0: float, sigma_end: float) -> dict:
    return {"accuracy": [0.9, 0.9, 0.9, 0.8, last, last, last],
            "sigma_max": [sigma0] * 6 + [sigma_end], "sigma0": sigma0}


def _data(base_last: float, spec_last: float, spec_sigma: float, base_sigma: float,
          seeds: int = 3) -> dict:
    return {"baseline": [_run(base_last, 4.0, base_sigma)] * seeds,
            "spectral": [_run(spec_last, 4.0, spec_sigma)] * seeds}


def test_check_thresholds():
    phen = SpectralPlasticity()
    checks = phen.check(_data(0.5, 0.88, 3.0, 12.0))
    assert all(c.passed for c in checks) and all(c.seeds == 3 for c in checks)
    passed = [c.passed for c in phen.check(_data(0.75, 0.8, 5.5, 3.5))]
    # drop 0.15 < 0.2; spectral drop 0.1 > 0.05; gap 0.05 < 0.2; spectral sigma moved away
    # from 1 (4 -> 5.5); baseline sigma moved towards 1 (4 -> 3.5)
    assert passed == [False, False, False, False, False]


def test_gap_must_exceed_its_seed_spread():
    data = _data(0.5, 0.88, 3.0, 12.0)
    data["spectral"] = [_run(0.88, 4.0, 3.0), _run(0.88, 4.0, 3.0), _run(0.1, 4.0, 3.0)]
    data["baseline"] = [_run(0.5, 4.0, 12.0), _run(0.5, 4.0, 12.0), _run(0.05, 4.0, 12.0)]
    gap = SpectralPlasticity().check(data)[2]  # gaps 0.38, 0.38, 0.05: mean 0.27, spread 0.165
    assert gap.passed
    data["spectral"][2] = _run(0.05, 4.0, 3.0)  # gaps 0.38, 0.38, 0.0: mean 0.253 > 0.19
    assert SpectralPlasticity().check(data)[2].passed
    data["baseline"][0] = _run(0.88, 4.0, 12.0)  # gaps 0, 0.38, 0: mean 0.127 < 0.2
    assert not SpectralPlasticity().check(data)[2].passed
