"""tiny-subspace (row 28): the check on hand-made overlap curves (late share against the
random baseline, the rise from step 0, persistence from the second half on)."""

from __future__ import annotations

from trainlab.phenomena.gurari2018_tiny_subspace import TinySubspace


def _run(first, late, pers, dim=2000):
    return {"steps": [0, 100, 200, 300, 400], "overlap": [first, 0.3, late, late, late],
            "persistence": [0.1, 0.2, pers, pers], "total": 400, "dim": dim, "lag_steps": 100}


def test_check_on_hand_made_runs():
    good = TinySubspace().check({"seeds": [_run(0.2, 0.8, 0.9)] * 3, "k": 10})
    assert all(c.passed for c in good) and abs(good[0].measured - 0.8) < 1e-12
    assert abs(good[1].measured - 0.6) < 1e-12
    assert [c.passed for c in TinySubspace().check(
        {"seeds": [_run(0.9, 0.8, 0.9)], "k": 10})] == [True, False, True]
    # a share of 0.6 in a 10-of-1000 subspace is below 100 k/P = 1: not "tiny"
    assert not TinySubspace().check({"seeds": [_run(0.2, 0.6, 0.9, dim=1000)], "k": 10})[0].passed
    assert not TinySubspace().check({"seeds": [_run(0.2, 0.8, 0.3)], "k": 10})[2].passed


def test_regression_guard_initial_share():
    """Guard against the full path's recorded number (seed 0): f_top at step 0 was 0.8108
    (MNIST-1D, 40-32-32-10, g and H on the same 1000 points)."""
    import torch
    import torch.nn.functional as F

    from trainlab.init import apply as init_apply
    from trainlab.models import build_model
    from trainlab.probes import PROBES, ProbeContext
    from trainlab.tasks import build_task

    task = build_task("mnist1d")
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(task.x_train), generator=g)[:1000]
    model = build_model("mlp", (40,), 10, depth=2, width=32)
    init_apply(model, "kaiming-normal", generator=g)
    ctx = ProbeContext(step=0, model=model, loss_fn=F.cross_entropy,
                       batch=(task.x_train[idx], task.y_train[idx]),
                       generator=torch.Generator().manual_seed(0))
    share = float(PROBES.get("gradient-subspace")(k=10).measure(ctx)["grad_subspace_overlap"])
    assert abs(share - 0.8108) < 2e-3
