"""Gradient boosting of the last layers (row 41): the integrated head equals the additive
expansion, the constant start and pseudo-residuals have their closed forms, every stage lowers
the training loss, truncation gives the earlier stages, and the head learns MNIST-1D."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainlab.optim.procedures import gradient_boost_head
from trainlab.optim.procedures.gradient_boosting import pseudo_residuals


def _regression(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(200, 4, generator=g, dtype=torch.float64)
    y = torch.stack([torch.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2], x[:, 3] ** 2], dim=1) + 3.0
    return x, y, g


def test_pseudo_residuals_closed_forms():
    out = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 2, 1, 1, 0])
    o = out.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(o, y, reduction="sum"), o)
    torch.testing.assert_close(pseudo_residuals(out, y, "cross_entropy"), -g)
    yr = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(pseudo_residuals(out, yr, "mse"), yr - out)


def test_integrated_head_is_the_additive_expansion_and_loss_decreases():
    x, y, g = _regression()
    res = gradient_boost_head(x, y, 2, steps=6, units=3, shrinkage=0.5, fit_steps=100,
                              generator=g)
    torch.testing.assert_close(res.bias0, y.mean(0))
    assert len(res.losses) == 7 and res.losses[0] == 0.5 * float(((y - y.mean(0)) ** 2)
                                                                .sum(-1).mean())
    assert all(b <= a + 1e-12 for a, b in zip(res.losses, res.losses[1:]))
    assert res.losses[-1] < 0.5 * res.losses[0]
    with torch.no_grad():
        full = res.head(x)
        assert abs(0.5 * float(((full - y) ** 2).sum(-1).mean()) - res.losses[-1]) < 1e-9
        for t in (1, 3, 6):
            stage = res.truncated(t)(x)
            assert abs(0.5 * float(((stage - y) ** 2).sum(-1).mean()) - res.losses[t]) < 1e-9
    assert res.head[0].out_features == 18


def test_boosted_head_learns_mnist1d():
    from trainlab.tasks import build_task

    task = build_task("mnist1d")
    x, y = task.x_train[:512], task.y_train[:512]
    res = gradient_boost_head(x, y, 10, loss="cross_entropy", steps=4, units=8, fit_steps=40,
                              fit_lr=3e-2, generator=torch.Generator().manual_seed(0))
    prior = torch.log(torch.bincount(y, minlength=10).float() / 512).expand(512, 10)
    assert abs(res.losses[0] - float(F.cross_entropy(prior, y))) < 1e-5
    assert all(b <= a + 1e-6 for a, b in zip(res.losses, res.losses[1:]))
    with torch.no_grad():
        acc = float((res.head(x).argmax(-1) == y).float().mean())
    assert res.losses[-1] < 0.75 * res.losses[0] and acc > 0.4, (res.losses, acc)
