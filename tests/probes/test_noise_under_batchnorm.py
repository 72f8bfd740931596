"""The two-batch-size noise scale (McCandlish et al. 2018, appendix A.1) against plain
references, and the grad-noise probe's fallback to it under BatchNorm in training mode."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import batch, context, loop_grads, mlp, snapshot
from torch import nn

from trainlab.probes import PROBES
from trainlab.probes.gradient_noise import noise_scale_terms, two_batch_noise
from trainlab.probes.per_sample import per_sample_grad_stats


def two_batch_reference(grads_of, n: int, k: int) -> tuple[float, float]:
    """The appendix's estimates from the squared norms of the mean gradients of ``k``
    consecutive sub-batches and of their union, written out plainly."""
    b = n // k
    big = k * b
    s_big = grads_of(0, big).pow(2).sum().item()
    s_small = sum(grads_of(j * b, (j + 1) * b).pow(2).sum().item() for j in range(k)) / k
    trace = (s_small - s_big) / (1 / b - 1 / big)
    grad_sq = (big * s_big - b * s_small) / (big - b)
    return trace, grad_sq


def test_two_batch_estimates_from_per_example_gradients():
    model, (x, y) = mlp(), batch(n=12)
    g = loop_grads(model, F.cross_entropy, x, y)  # rows: per-example gradients
    res = two_batch_noise(model, F.cross_entropy, x, y, groups=3)
    trace, grad_sq = two_batch_reference(lambda i, j: g[i:j].mean(0), 12, 3)
    assert (res.small, res.big) == (4, 12)
    assert float(res.trace_cov) == pytest.approx(trace, rel=1e-9)
    assert float(res.grad_sq) == pytest.approx(grad_sq, rel=1e-9)
    assert float(res.trace_cov_stderr) > 0 and float(res.grad_sq_stderr) > 0


def test_averaged_over_the_splits_it_is_the_per_example_estimate():
    """Over the three ways of splitting 4 examples into pairs the two-batch estimates
    average to the unbiased per-example ones (small batch 1, big batch 4)."""
    model, (x, y) = mlp(), batch(n=4)
    splits = [(0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2)]
    runs = [two_batch_noise(model, F.cross_entropy, x[list(s)], y[list(s)], groups=2)
            for s in splits]
    trace, grad_sq = noise_scale_terms(per_sample_grad_stats(model, F.cross_entropy, x, y))
    assert sum(float(r.trace_cov) for r in runs) / 3 == pytest.approx(float(trace), rel=1e-9)
    assert sum(float(r.grad_sq) for r in runs) / 3 == pytest.approx(float(grad_sq), rel=1e-9)


def bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3)).double()


def test_grad_noise_falls_back_to_two_batch_sizes_under_batchnorm():
    model, (x, y) = bn_model(), batch(n=12)
    model.train()
    ctx = context(model, x, y)
    snap = snapshot(model)
    out = PROBES.get("grad-noise")().measure(ctx)
    # the reference: plain autograd on a copy, each sub-batch normalized by its own stats
    twin = copy.deepcopy(model)

    def grads_of(i: int, j: int) -> torch.Tensor:
        twin.zero_grad()
        F.cross_entropy(twin(x[i:j]), y[i:j]).backward()
        return torch.cat([p.grad.reshape(-1) for p in twin.parameters()])

    trace, grad_sq = two_batch_reference(grads_of, 12, 4)
    assert float(out["gns/trace_cov"]) == pytest.approx(trace, rel=1e-9)
    assert float(out["gns/grad_sq"]) == pytest.approx(grad_sq, rel=1e-9)
    assert float(out["gns"]) == pytest.approx(trace / grad_sq, rel=1e-9)
    assert "gns/trace_cov_stderr" in out and "gsnr" not in out
    assert "two batch sizes (3 and 12" in ctx.notes["grad-noise"]
    for n, b in snap["buffers"].items():  # running statistics untouched
        assert torch.equal(dict(model.named_buffers())[n], b), n
    assert torch.equal(torch.get_rng_state(), snap["rng"])
