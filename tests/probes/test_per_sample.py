"""Per-example gradient statistics against a loop of single-example backward passes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import (
    SeqLinear,
    assert_unchanged,
    batch,
    context,
    loop_grads,
    mlp,
    snapshot,
)
from torch import nn

from trainlab.probes.gradient_noise import GradientNoise, mean_gsnr, noise_scale_terms
from trainlab.probes.per_sample import per_sample_grad_stats


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.l = nn.Conv1d(1, 3, 3, padding=1), nn.Linear(15, 3)

    def forward(self, x):
        return self.l(torch.relu(self.c(x.unsqueeze(1))).flatten(1))


def mse(out, y):
    return 0.5 * (out - y).pow(2).sum(-1).mean()


CASES = {
    "mlp": (lambda: mlp(), lambda: batch(), F.cross_entropy, "linear-hooks"),
    "mlp-nobias": (lambda: nn.Sequential(nn.Linear(5, 6, bias=False), nn.ReLU(),
                                         nn.Linear(6, 3)).double(),
                   lambda: batch(), F.cross_entropy, "linear-hooks"),
    "mlp-mse": (lambda: mlp(), lambda: (batch()[0], torch.randn(12, 3, dtype=torch.float64)),
                mse, "linear-hooks"),
    "seq": (lambda: SeqLinear().double(),
            lambda: (torch.randn(9, 7, 4, dtype=torch.float64), torch.randint(0, 3, (9,))),
            F.cross_entropy, "linear-hooks"),
    "conv": (lambda: Conv().double(), lambda: batch(n=10), F.cross_entropy, "vmap"),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", ["auto", "vmap"])
def test_stats_match_per_example_loop(case, method):
    make_model, make_batch, loss_fn, auto_method = CASES[case]
    torch.manual_seed(0)
    model = make_model()
    x, y = make_batch()
    ref = loop_grads(model, loss_fn, x, y)
    stats = per_sample_grad_stats(model, loss_fn, x, y, method=method, chunk=4)
    assert stats.method == (auto_method if method == "auto" else "vmap")
    torch.testing.assert_close(stats.sq_norms, ref.pow(2).sum(1))
    flat = lambda d: torch.cat([v.reshape(-1) for v in d.values()])  # noqa: E731
    torch.testing.assert_close(flat(stats.grad_sum), ref.sum(0))
    torch.testing.assert_close(flat(stats.grad_sq_sum), ref.pow(2).sum(0))


def test_noise_scale_and_gsnr_against_definitions():
    model = mlp()
    x, y = batch(n=16)
    ref = loop_grads(model, F.cross_entropy, x, y)
    stats = per_sample_grad_stats(model, F.cross_entropy, x, y)
    n = len(x)
    gbar = ref.mean(0)
    cov = (ref - gbar).T @ (ref - gbar) / (n - 1)  # unbiased sample covariance
    trace, gsq = noise_scale_terms(stats)
    torch.testing.assert_close(trace, torch.trace(cov))
    torch.testing.assert_close(gsq, gbar.pow(2).sum() - torch.trace(cov) / n)
    var = ref.var(0, unbiased=False)
    torch.testing.assert_close(mean_gsnr(stats), (gbar.pow(2) / var)[var > 0].mean())


def test_probe_leaves_model_unchanged_and_reports():
    model = mlp()
    x, y = batch()
    ctx = context(model, x, y)
    snap = snapshot(model)
    out = GradientNoise().measure(ctx)
    assert_unchanged(model, snap)
    assert {"gns", "gsnr", "gns/trace_cov", "per_sample_grad_norm/std"} <= set(out)
    ref = loop_grads(model, F.cross_entropy, x, y)
    torch.testing.assert_close(out["per_sample_grad_norm/mean"], ref.norm(dim=1).mean())


def monitor_context(model, x, y, loss_fn=F.cross_entropy):
    """As the monitor calls probes: after this batch's backward, before the update."""
    from trainlab.probes import ProbeContext

    model.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    return ProbeContext(step=1, model=model, loss_fn=loss_fn, batch=(x, y), loss=loss.detach())


@pytest.fixture
def reuse_every_layer(monkeypatch):
    """The tiny test layers are below the width where reuse pays: reuse them all."""
    monkeypatch.setattr("trainlab.probes.per_sample.REUSE_MIN_WEIGHTS", 0)


@pytest.mark.parametrize("case", ["mlp", "mlp-nobias", "mlp-mse"])
def test_reused_batch_gradient_gives_the_same_statistics(case, reuse_every_layer):
    make_model, make_batch, loss_fn, _ = CASES[case]
    model = make_model()
    x, y = make_batch()
    ctx = monitor_context(model, x, y, loss_fn)
    fresh = per_sample_grad_stats(model, loss_fn, x, y)
    reused = per_sample_grad_stats(model, loss_fn, x, y, mean_grad=ctx.grads())
    assert reused.reused_mean and not fresh.reused_mean
    for k in fresh.grad_sum:
        torch.testing.assert_close(reused.grad_sum[k], fresh.grad_sum[k])
        torch.testing.assert_close(reused.grad_sq_sum[k], fresh.grad_sq_sum[k])
    torch.testing.assert_close(reused.sq_norms, fresh.sq_norms)


def test_a_gradient_that_is_not_this_batch_is_ignored(reuse_every_layer):
    model = mlp()
    x, y = batch(n=16)
    ref = loop_grads(model, F.cross_entropy, x, y)
    ctx = monitor_context(model, x, y)
    clipped = {k: 0.5 * g for k, g in ctx.grads().items()}  # e.g. clip_grad_norm_
    other = monitor_context(model, x[:8], y[:8]).grads()  # another batch
    bias_only = dict(ctx.grads())
    bias_only["0.bias"] = 0.5 * bias_only["0.bias"]
    flat = lambda d: torch.cat([v.reshape(-1) for v in d.values()])  # noqa: E731
    for wrong in (clipped, other, bias_only):
        stats = per_sample_grad_stats(model, F.cross_entropy, x, y, mean_grad=wrong)
        assert not stats.reused_mean
        torch.testing.assert_close(flat(stats.grad_sum), ref.sum(0))


@pytest.mark.parametrize("min_weights", [0, 65536])
def test_probe_in_monitor_order_matches_loop(monkeypatch, min_weights):
    monkeypatch.setattr("trainlab.probes.per_sample.REUSE_MIN_WEIGHTS", min_weights)
    model = mlp()
    x, y = batch(n=16)
    ref = loop_grads(model, F.cross_entropy, x, y)
    ctx = monitor_context(model, x, y)
    snap = snapshot(model)
    out = GradientNoise().measure(ctx)
    assert_unchanged(model, snap)
    n, gbar = len(x), ref.mean(0)
    cov = (ref - gbar).T @ (ref - gbar) / (n - 1)
    torch.testing.assert_close(out["gns/trace_cov"], torch.trace(cov))
    var = ref.var(0, unbiased=False)
    torch.testing.assert_close(out["gsnr"], (gbar.pow(2) / var)[var > 0].mean())
