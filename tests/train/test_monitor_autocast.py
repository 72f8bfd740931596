"""Probes called inside the user's ``torch.autocast("cpu", dtype=torch.bfloat16)`` block
compute in float32: at the same parameters they give the numbers of the same model measured
without autocast, except for what they read from the bfloat16 training pass itself (the
loss, the gradients, the recorded activations), which differs by bfloat16 rounding."""

from __future__ import annotations

import contextlib

import pytest
import torch

from trainlab.models import build_model
from trainlab.tasks import build_task
from trainlab.train import Monitor

# read from the training pass (forward under autocast), with the relative error bfloat16's
# rounding explains (8 bits: 2^-9 per rounding): a few roundings for the loss and gradient
# norms; several times more for the gradient-noise scale (a ratio with a difference of
# squares); the GSNR averages per-entry ratios of a squared mean gradient to a variance, and
# entries whose variance is near bfloat16's resolution dominate it
FROM_TRAINING_PASS = {"loss": 1e-2, "grad_norm": 1e-2, "lgi/": 1e-2, "gns": 5e-2,
                      "per_sample_grad_norm": 5e-2, "gsnr": 0.25}


def measure(preset: str, autocast: bool) -> Monitor:
    task = build_task("gaussian-mixture", n_train=48, n_test=24, dim=6)
    torch.manual_seed(0)  # the test's own draw
    model = build_model("mlp", task.input_shape, task.num_outputs, width=12, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    mon = Monitor(model, loss_fn=task.loss, optimizer=opt, probes=preset, every=1,
                  total_steps=0, task=task)  # step 0: every probe, the same parameters
    x, y = task.x_train[:24], task.y_train[:24]
    with (torch.autocast("cpu", dtype=torch.bfloat16) if autocast
          else contextlib.nullcontext()):
        loss = task.loss(model(x), y)
        loss.backward()
        mon.step(loss, (x, y))  # the probes run inside the user's autocast block
    mon.finish()
    return mon


@pytest.mark.parametrize("preset", ["standard", "full"])
def test_probes_under_autocast_compute_in_float32(preset):
    plain, mixed = measure(preset, False), measure(preset, True)
    assert mixed.skipped == plain.skipped and mixed.notes == plain.notes
    assert set(mixed.history) == set(plain.history)
    assert {"sharpness", "train/loss"} <= set(plain.history)
    if preset == "full":
        assert {"gns", "hessian/trace", "grad_subspace_overlap", "sharpness/gfs"} & set(
            plain.history)
    for name, rows in plain.history.items():
        want, got = rows[0][1], mixed.history[name][0][1]
        tol = next((t for p, t in FROM_TRAINING_PASS.items() if name.startswith(p)), None)
        if tol is not None:
            assert got == pytest.approx(want, rel=tol, abs=1e-6), name
            if name == "loss":  # it did run in bfloat16
                assert got != want
        else:  # the probes' own passes and arithmetic: float32
            assert got == pytest.approx(want, rel=1e-5, abs=1e-7), name
