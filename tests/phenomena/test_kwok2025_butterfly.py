"""butterfly-effect (row 8): the normalized whole-network perturbation has exactly the stated
norm and per-tensor shape, the perturbation times are the authors' fractions of training, a
copy made at step t with no perturbation is the reference bit for bit, and the check reads
hand-made barriers as the claim says."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from trainlab.phenomena._base import map_runs
from trainlab.phenomena.kwok2025_butterfly import (
    ButterflyEffect,
    normalized_perturbation,
    train_copy,
)


def test_perturbation_norm_and_scope():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    std = {"0.weight": 0.5, "2.weight": 0.1}
    noise = normalized_perturbation(net, std, 0.01, generator=torch.Generator().manual_seed(1))
    assert set(noise) == {"0.weight", "2.weight"}  # biases are left alone
    expected = math.sqrt(20 * 0.25 + 12 * 0.01)
    total = math.sqrt(sum(float(v.pow(2).sum()) for v in noise.values()))
    assert abs(total - 0.01 * expected) < 1e-9
    again = normalized_perturbation(net, std, 0.01, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(noise[k], again[k]) for k in noise)  # generator only


def test_perturbation_times_are_the_authors_fractions():
    # 0, 0.5, 2, 10, 50% of the 50 epochs x 31 steps of full mode; quick: 0, 2, 50% of 62
    assert ButterflyEffect.times(1550, ButterflyEffect.FRACTIONS) == [0, 8, 31, 155, 775]
    assert ButterflyEffect.times(62, ButterflyEffect.QUICK_FRACTIONS) == [0, 1, 31]


def test_unperturbed_copy_is_the_reference():
    # one epoch (31 steps): the control path (copy weights and momentum at t = 16, no noise)
    # ends exactly at the reference; a sigma = 0.01 copy does not (full mode's own control
    # compares runs made in different worker processes, so it also checks those agree)
    jobs = {"reference": (5, 1, 7, None, None), "control": (5, 1, 7, 16, None),
            "copy": (5, 1, 7, 16, 3)}
    serial = map_runs(train_copy, jobs, processes=1)
    ref, control, copy = serial["reference"], serial["control"], serial["copy"]
    assert all(torch.equal(ref[k], control[k]) for k in ref)
    assert not all(torch.equal(ref[k], copy[k]) for k in ref)


def test_check_on_hand_made_barriers():
    fading = {"times": [0, 8, 31, 155, 775], "control_distance": 0.0,
              "barrier": np.array([[0.5, 0.6, 0.55], [0.4, 0.5, 0.45], [0.1, 0.12, 0.08],
                                   [0.03, 0.02, 0.025], [0.01, 0.02, 0.015]])}
    assert all(c.passed for c in ButterflyEffect().check(fading))
    flat = dict(fading, barrier=0.3 + 0.01 * np.arange(15.0).reshape(5, 3))  # grows with t
    assert [c.passed for c in ButterflyEffect().check(flat)][:3] == [False, False, False]
    # one adjacent swap passes (a), a peak after t = 0 (the old grid's shape) does not
    swap = dict(fading, barrier=fading["barrier"][[0, 1, 2, 4, 3]])
    assert ButterflyEffect().check(swap)[0].passed
    peak = dict(fading, barrier=fading["barrier"][[2, 0, 1, 3, 4]])
    assert not ButterflyEffect().check(peak)[0].passed
    small_ratio = dict(fading, barrier=fading["barrier"] + 0.05)  # 0.6 / 0.065 < 10
    assert not ButterflyEffect().check(small_ratio)[1].passed
    broken = dict(fading, control_distance=1e-3)
    assert not ButterflyEffect().check(broken)[3].passed


def test_different_basin_check_reads_the_independent_runs():
    fading = {"times": [0, 8, 31, 155, 775], "control_distance": 0.0,
              "barrier": np.array([[0.5, 0.6, 0.55], [0.4, 0.5, 0.45], [0.1, 0.12, 0.08],
                                   [0.03, 0.02, 0.025], [0.01, 0.02, 0.015]])}
    assert len(ButterflyEffect().check(fading)) == 4  # quick mode: no independent runs
    same_basin = dict(fading, independent={"barrier": [2.5, 2.6, 2.2]})  # B(0) = 0.55
    checks = ButterflyEffect().check(same_basin)
    assert checks[4].measured == 0.55 / 2.5 and checks[4].passed
    far = dict(fading, independent={"barrier": [6.0, 6.5, 5.8]})  # 0.55 / 6.0 < 0.1
    assert not ButterflyEffect().check(far)[4].passed
