"""Kernel attention under GD (row 11): the check on hand-made final losses (the layer itself
is tested in tests/models/test_kernel_attention.py)."""

from __future__ import annotations

from trainlab.phenomena.song2024_kernel_attention import KernelAttentionGD


def test_check_thresholds():
    phen = KernelAttentionGD()
    good = {"final": {"softmax": [0.4, 0.4, 0.4, 0.4, 0.4], "gaussian": [0.1, 0.1, 0.1, 0.1, 0.5]}}
    assert [c.passed for c in phen.check(good)] == [True, True]
    bad = {"final": {"softmax": [0.4, 0.4, 0.4, 0.4, 0.4], "gaussian": [0.3, 0.3, 0.3, 0.5, 0.5]}}
    checks = phen.check(bad)  # wins 3/5 = 0.6, median ratio 0.75
    assert [c.passed for c in checks] == [False, False]
    assert abs(checks[0].measured - 0.6) < 1e-12 and abs(checks[1].measured - 0.75) < 1e-12
