"""Grokking features (row 33): the Fourier concentration measure against numpy's FFT and
on exact cosines, and the check's threshold logic on hand-made sweeps."""

from __future__ import annotations

import numpy as np
import torch

from trainlab.phenomena.tian2025_grokking_features import GrokkingFeatures, fourier_concentration


def test_concentration_matches_numpy_and_is_one_on_cosines():
    p = 11
    a = np.arange(p)
    cos = np.stack([np.cos(2 * np.pi * f * a / p + f) for f in (1, 3, 5)])  # one frequency
    w = torch.tensor(np.concatenate([cos, cos[::-1]], axis=1))  # (3, 2p)
    np.testing.assert_allclose(fourier_concentration(w, p, top=2).numpy(), 1.0, rtol=1e-12)
    rng = np.random.default_rng(0)
    r = rng.standard_normal((4, 2 * p))
    ref = []
    for row in r:
        shares = []
        for half in (row[:p], row[p:]):
            e = np.sort(np.abs(np.fft.fft(half)) ** 2)[::-1]
            shares.append(e[:3].sum() / e.sum())
        ref.append(np.mean(shares))
    np.testing.assert_allclose(fourier_concentration(torch.tensor(r), p).numpy(), ref,
                               rtol=1e-12)
    assert max(ref) < 0.8


def _run(fraction, val, feat=0.8, t_mem=10, t_gen=100):
    return {"fraction": fraction, "t_mem": t_mem, "t_gen": t_gen, "train_acc": 1.0,
            "val_acc": val, "features_init": 0.3, "features": feat}


def test_check_threshold_logic():
    phen = GrokkingFeatures()
    runs = [_run(0.1, 0.0, 0.3), _run(0.2, 0.05, 0.3), _run(0.3, 0.5), _run(0.4, 0.95),
            _run(0.5, 1.0)]
    checks = phen.check({"runs": runs})
    assert all(c.passed for c in checks)
    assert checks[0].measured == 10.0 and checks[-1].measured == 1.0
    runs[3] = _run(0.4, 0.6)  # two fractions between the regimes: not sharp
    assert not phen.check({"runs": runs})[-1].passed
    runs[4] = _run(0.5, 0.6, t_gen=None)  # never generalized
    assert phen.check({"runs": runs})[0].measured == 0.0
