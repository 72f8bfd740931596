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


def test_stacked_gd_equals_one_run_at_a_time():
    """half_mse_gd_stacked (vmapped, per-run lr) against half_mse_gd on each model alone."""
    import copy

    import torch

    from trainlab.phenomena._gd import half_mse_gd, half_mse_gd_stacked

    phen = KernelAttentionGD()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, phen.T, phen.D, generator=g, dtype=torch.float64)
    y = torch.randn(16, 1, generator=g, dtype=torch.float64)
    models = phen._models("gaussian", [0, 1, 2])
    before = copy.deepcopy(models[0].state_dict())
    lrs = [0.3, 1.0, 0.1]
    first, last = half_mse_gd_stacked(models, x, y, lrs=lrs, steps=20)
    assert all(torch.equal(v, models[0].state_dict()[k]) for k, v in before.items())
    for r, (m, lr) in enumerate(zip(models, lrs, strict=True)):
        f, lst = half_mse_gd(copy.deepcopy(m), x, y, lr=lr, steps=20)
        assert abs(first[r].item() - f) <= 1e-12 * f and abs(last[r].item() - lst) <= 1e-10 * lst
        assert last[r].item() < f  # it trained


def test_stacked_gd_keeps_a_diverged_run_apart():
    import torch

    from trainlab.phenomena._gd import half_mse_gd_stacked

    phen = KernelAttentionGD()
    g = torch.Generator().manual_seed(4)
    x = torch.randn(16, phen.T, phen.D, generator=g, dtype=torch.float64)
    y = torch.randn(16, 1, generator=g, dtype=torch.float64)
    models = phen._models("softmax", [0, 0])
    first, last = half_mse_gd_stacked(models, x, y, lrs=[1e6, 0.3], steps=30)
    assert not torch.isfinite(last[0]) or last[0] > 1e6 * first[0]
    assert torch.isfinite(last[1]) and last[1] < first[1]
    # the run beside the diverged one is the run trained alone (not only "still finite")
    import copy

    from trainlab.phenomena._gd import half_mse_gd

    f, lst = half_mse_gd(copy.deepcopy(models[1]), x, y, lr=0.3, steps=30)
    assert abs(first[1].item() - f) <= 1e-12 * f and abs(last[1].item() - lst) <= 1e-10 * lst


def test_stacked_gd_keeps_the_learning_rates_on_the_parameters_device():
    """The per-run learning rates live where the parameters do (the meta device stands in
    for an accelerator: a CPU rate vector times a gradient elsewhere raises)."""
    import torch
    from torch import nn

    from trainlab.phenomena._gd import half_mse_gd_stacked

    models = [nn.Linear(3, 1).to("meta") for _ in range(2)]
    x, y = torch.randn(5, 3, device="meta"), torch.randn(5, 1, device="meta")
    first, last = half_mse_gd_stacked(models, x, y, lrs=[0.1, 0.2], steps=2)
    assert first.device.type == last.device.type == "meta" and last.shape == (2,)
