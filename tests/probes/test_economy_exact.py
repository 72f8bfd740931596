"""The economy preset's fast paths give the numbers of the plain formulas they replace, to the
bit: per-example sums written into kept flat buffers (instead of concatenating per-layer
products and scaling the result), the GSNR computed in place with a comparison mask
(instead of ``sign``) block by block, and parameter differences written into kept tensors
(instead of ``torch._foreach_sub`` for the large tensors). These are the eager path's bits: the
one-pass C sums (``trainlab.probes.fused``) are off here and tested in ``test_fused.py``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import SeqLinear
from _probe_helpers import economy_history as run_economy
from torch import nn

from trainlab.probes import fused
from trainlab.probes import gradient_noise as gn_module
from trainlab.probes import norms as norms_module
from trainlab.probes.gradient_noise import _noise
from trainlab.probes.per_sample import (
    FlatBuffers,
    GradStats,
    LinearCapture,
    _linear_layout,
    captured_grad_stats,
)


@pytest.fixture(autouse=True)
def eager_path(monkeypatch):
    """Every test here checks the eager torch path."""
    monkeypatch.setattr(fused, "_enabled", False)


def reference_stats(layout, records, n: int) -> GradStats:
    """The statistics as computed before the flat buffers (all examples, 2-D inputs: each
    layer's products, concatenated, then scaled by ``n``; sequence inputs: per-example
    gradients by einsum)."""
    sums, sqs, rows_total = [], [], None
    for module, names in layout.layers.items():
        rec = records[module]
        a, d = rec.a, rec.d
        if a.dim() == 2:
            d_sq, a_sq = d * d, a * a
            rows = d_sq.sum(1)
            if "weight" in names:
                a_rows = a_sq.sum(1)
                if rows_total is None:
                    rows_total = (torch.addcmul(rows, rows, a_rows) if "bias" in names
                                  else rows * a_rows)
                else:
                    rows_total = torch.addcmul(rows_total, rows, a_rows)
                    if "bias" in names:
                        rows_total = rows_total + rows
                sqs.append(torch.mm(d_sq.T, a_sq))
                sums.append(rec.weight)
            if "bias" in names:
                sqs.append(d_sq.sum(0))
                sums.append(rec.bias)
        else:
            a3, d3 = a.reshape(n, -1, a.shape[-1]), d.reshape(n, -1, d.shape[-1])
            for kind in names:
                g = torch.einsum("nto,nti->noi", d3, a3) if kind == "weight" else d3.sum(1)
                g_sq = g * g
                r = g_sq.flatten(1).sum(1)
                rows_total = r if rows_total is None else rows_total + r
                sums.append(g.sum(0))
                sqs.append(g_sq.sum(0))
    flat_sum = torch.cat([t.reshape(-1) for t in sums]).mul_(n)
    flat_sq = torch.cat([t.reshape(-1) for t in sqs]).mul_(n * n)
    return GradStats(n, rows_total.mul_(n * n), {}, {}, "captured", True, flat_sum, flat_sq)


def plain_total(x: torch.Tensor, block: int) -> torch.Tensor:
    """A vector's sum as :func:`_noise` takes it: whole, when it is one block; else the sums
    of its blocks added in float64, rounded once."""
    if x.numel() <= block:
        return x.sum()
    return torch.stack([c.sum() for c in x.split(block)]).sum(dtype=torch.float64).to(x.dtype)


def reference_noise(stats: GradStats, block: int = 65536):
    """The noise terms and GSNR by whole-vector operations (mask by ``sign``, new tensors),
    the two sums as :func:`plain_total` takes them."""
    n, total, sq = stats.n, stats.flat_sum, stats.flat_sq
    s2 = total.square()
    g2 = plain_total(s2, block)
    mean_sq = stats.sq_norms.mean()
    trace_cov = torch.sub(mean_sq, g2, alpha=1 / n ** 2).mul_(n / (n - 1))
    grad_sq = torch.sub(g2, mean_sq, alpha=n).mul_(1 / (n * (n - 1)))
    var = torch.mul(sq, n).sub_(s2)
    pos = torch.sign(var).clamp_min_(0)
    ratio = s2.mul_(pos).div_(var.clamp_min_(torch.finfo(var.dtype).tiny))
    return trace_cov, grad_sq, plain_total(ratio, block) / pos.sum().clamp_min(1)


def recorded(model, x, y, loss_fn=F.cross_entropy):
    cap = LinearCapture(model)
    cap.arm(True)
    model.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    cap.arm(False)
    return cap.take()


def mlp(dtype, bias=True):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(9, 33, bias=bias), nn.ReLU(), nn.Linear(33, 17),
                         nn.Tanh(), nn.Linear(17, 4)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", ["mlp", "no-bias", "seq"])
@pytest.mark.parametrize("block", [65536, 37])  # one block; many, the last one short
def test_flat_buffers_give_the_reference_statistics_to_the_bit(monkeypatch, dtype, case, block):
    monkeypatch.setattr(gn_module, "NOISE_BLOCK", block)
    model = (SeqLinear().to(dtype) if case == "seq" else mlp(dtype, bias=case != "no-bias"))
    g = torch.Generator().manual_seed(3)
    buffers = FlatBuffers()
    kept = None
    for _ in range(3):  # the same buffers, refilled at every call
        shape = (24, 5, 4) if case == "seq" else (24, 9)
        x = torch.randn(*shape, generator=g).to(dtype)
        y = torch.randint(0, 3 if case == "seq" else 4, (24,), generator=g)
        records = recorded(model, x, y)
        layout = _linear_layout(model)
        with torch.no_grad():
            want = reference_stats(layout, records, 24)
        fresh = captured_grad_stats(model, records, 24)
        got = captured_grad_stats(model, records, 24, buffers=buffers)
        for stats in (fresh, got):
            assert torch.equal(stats.flat_sum, want.flat_sum)
            assert torch.equal(stats.flat_sq, want.flat_sq)
            assert torch.equal(stats.sq_norms, want.sq_norms)
            for name, p in model.named_parameters():  # the views lie where the names say
                assert stats.grad_sum[name].shape == p.shape
        assert kept is None or got.flat_sum.data_ptr() == kept  # no new allocation
        kept = got.flat_sum.data_ptr()
        # in place on the buffers (the probe's path) = on fresh tensors = the reference
        expected = reference_noise(want, block)
        assert all(torch.equal(a, b) for a, b in zip(_noise(fresh), expected))
        assert all(torch.equal(a, b) for a, b in zip(_noise(got, buffers), expected))
        # deferred (the probe's path): the last passes done by _noise block by block, or
        # by settle() over the whole vectors; the same numbers either way (the general
        # path: the kept plan of small models is test_planned_statistics_...)
        buffers.plan = None
        late = captured_grad_stats(model, records, 24, buffers=buffers, deferred=True)
        assert all(torch.equal(a, b) for a, b in zip(_noise(late, buffers), expected))
        assert not buffers.pending and buffers.sq_factor == 1
        late = captured_grad_stats(model, records, 24, buffers=buffers, deferred=True)
        assert buffers.pending  # known gradients (2-D) or scale factors (sequences) wait
        buffers.settle()
        assert torch.equal(late.flat_sum, want.flat_sum)
        assert torch.equal(late.flat_sq, want.flat_sq)


@pytest.mark.parametrize("block", [65536, 2])
def test_gsnr_mask_equals_the_sign_mask_on_zero_and_negative_variances(monkeypatch, block):
    monkeypatch.setattr(gn_module, "NOISE_BLOCK", block)
    # entries 0-1: per-example gradients all equal (variance 0 or a rounding-negative one),
    # entry 2: zero gradients, entry 3: a variance below the smallest normal number
    n = 4
    flat_sum = torch.tensor([0.3 * n, 0.1 * n, 0.0, 2.0, 1.5, -2.5], dtype=torch.float32)
    flat_sq = torch.tensor([n * 0.09, n * 0.01, 0.0, 1.0, 1.0, 3.0], dtype=torch.float32)
    tiny = torch.finfo(torch.float32).tiny
    flat_sq[3] = (flat_sum[3] ** 2 + tiny / 4) / n  # n Q - S^2 subnormal or zero
    var = torch.mul(flat_sq, n).sub_(flat_sum.square())
    assert (var <= 0).any() and (var > 0).any()
    stats = GradStats(n, torch.rand(n), {}, {}, "captured", False, flat_sum, flat_sq)
    buffers = FlatBuffers()
    buffers.sum, buffers.sq, buffers.mask = flat_sum.clone(), flat_sq.clone(), torch.empty(6)
    own = GradStats(n, stats.sq_norms, {}, {}, "captured", False, buffers.sum, buffers.sq)
    expected = reference_noise(stats, block)
    assert all(torch.equal(a, b) for a, b in zip(_noise(stats), expected))
    assert all(torch.equal(a, b) for a, b in zip(_noise(own, buffers), expected))
    assert torch.equal(stats.flat_sum, flat_sum.clone())  # not the probe's: left unchanged


@pytest.mark.parametrize("kept_from", [0, 20, 10 ** 9])  # all kept, mixed, none kept
def test_differences_equal_foreach_sub_and_keep_their_tensors(monkeypatch, kept_from):
    monkeypatch.setattr(norms_module, "KEPT_DIFFERENCE_NUMEL", kept_from)
    g = torch.Generator().manual_seed(0)
    now = [torch.randn(7, 5, generator=g), torch.randn(3, generator=g, dtype=torch.float64),
           torch.randn(30, generator=g)]
    memo: dict = {}
    ptrs = None
    for _ in range(2):
        bases = [t + torch.randn(t.shape, generator=g, dtype=t.dtype) for t in now]
        got = norms_module._differences(memo, now, bases)
        want = torch._foreach_sub(now, bases)
        assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(got, want))
        kept = [t.data_ptr() for t in got if t.numel() >= kept_from]
        assert ptrs is None or kept == ptrs  # the same tensors at every step
        ptrs = kept


def economy_history(monkeypatch, kept_from: int, dtype=torch.float32):
    monkeypatch.setattr(norms_module, "KEPT_DIFFERENCE_NUMEL", kept_from)
    monkeypatch.setattr(fused, "_enabled", False)  # (undone below, with the fixture's)
    history = run_economy(mlp(dtype), dtype, steps=6, batch=16)
    monkeypatch.undo()
    return history


def test_economy_in_a_monitor_is_the_same_with_kept_and_new_differences(monkeypatch):
    kept, fresh = economy_history(monkeypatch, 0), economy_history(monkeypatch, 10 ** 9)
    assert {"gsnr", "gns", "update_ratio", "distance", "grad_norm"} <= set(kept)
    assert kept == fresh


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_model_with_a_float32_loss_gives_statistics_in_the_model_dtype(dtype):
    """The flat buffers take the per-example gradients' dtype, not the loss's: a half
    precision model whose loss upcasts its outputs to float32 (as mixed-precision code
    does) must not make ``torch.mm(..., out=)`` write half products into float32 buffers.
    The sums are n times the batch gradient autograd gives (half precision rounding)."""
    from trainlab.probes.per_sample import per_sample_grad_stats

    model = mlp(dtype)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 9, generator=g).to(dtype), torch.randint(0, 4, (16,), generator=g)

    def loss_fn(out, target):
        return F.cross_entropy(out.float(), target)

    stats = per_sample_grad_stats(model, loss_fn, x, y, method="linear-hooks")
    assert stats.method == "linear-hooks" and stats.flat_sum.dtype == dtype
    model.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    want = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double() * 16
    got = stats.flat_sum.double()
    assert (got - want).norm() <= 2e-2 * want.norm()


class _HalfBodyFloatHead(nn.Module):
    """A bfloat16 layer under a float32 head (layers of two dtypes)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body, self.head = nn.Linear(9, 12).to(torch.bfloat16), nn.Linear(12, 4)

    def forward(self, x):
        return self.head(torch.tanh(self.body(x.to(torch.bfloat16))).float())


def test_layers_of_two_dtypes_give_the_concatenated_statistics_in_the_promoted_dtype():
    """Before the flat buffers the per-layer sums were concatenated (dtype promotion); the
    buffers take the promoted dtype and a layer in another dtype is copied in: the same
    numbers to the bit, with and without kept buffers, and on the linear-hooks path."""
    from trainlab.probes.per_sample import per_sample_grad_stats

    model = _HalfBodyFloatHead()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 9, generator=g), torch.randint(0, 4, (16,), generator=g)
    records = recorded(model, x, y)
    with torch.no_grad():
        want = reference_stats(_linear_layout(model), records, 16)
    assert want.flat_sum.dtype == torch.float32
    for buffers in (None, FlatBuffers()):
        got = captured_grad_stats(model, records, 16, buffers=buffers)
        assert torch.equal(got.flat_sum, want.flat_sum) and torch.equal(got.flat_sq, want.flat_sq)
    hooks = per_sample_grad_stats(model, F.cross_entropy, x, y, method="linear-hooks")
    grad = torch.cat([p.grad.reshape(-1).double() for p in model.parameters()]) * 16
    assert hooks.flat_sum.dtype == torch.float32
    assert (hooks.flat_sum.double() - grad).norm() <= 2e-2 * grad.norm()


def test_noise_sums_over_many_blocks_are_within_1e6_of_exact_sums():
    """Above one block the two sums of :func:`_noise` add block sums in float64: within
    1e-6 (relative) of the exact sums of the same float32 terms, on a vector of 2M entries
    (not the bits of torch's whole-vector sums, which order the terms otherwise)."""
    g = torch.Generator().manual_seed(0)
    n, size = 32, 2 ** 21
    flat_sum = torch.randn(size, generator=g)
    flat_sq = flat_sum.square() / n + torch.rand(size, generator=g)  # variances > 0
    flat_sq[:1000] = flat_sum[:1000].square() / n  # and some of (rounding-)zero variance
    sq_norms = torch.full((n,), 3.0 * float(flat_sum.double().square().sum()) / n ** 2)
    stats = GradStats(n, sq_norms, {}, {}, "captured", False, flat_sum, flat_sq)
    s2 = flat_sum.square()
    var = torch.mul(flat_sq, n).sub_(s2)
    pos = torch.sign(var).clamp_min_(0)
    ratio = (s2 * pos).div_(var.clamp_min(torch.finfo(var.dtype).tiny))
    g2 = s2.double().sum()  # the exact sums of the float32 terms (float64, 2M terms)
    mean_sq = sq_norms.double().mean()
    want = ((mean_sq - g2 / n ** 2) * n / (n - 1), (g2 - n * mean_sq) / (n * (n - 1)),
            ratio.double().sum() / pos.double().sum())
    got = _noise(stats)
    for a, b in zip(got, want):
        assert a.dtype == torch.float32
        assert abs(float(a) - float(b)) <= 1e-6 * abs(float(b))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kept_scalar_operands_give_the_numbers_of_python_numbers(dtype):
    """``FlatBuffers.scalar``: a 0-d tensor in place of a Python number (the batch size,
    its square and cube, 1/(n(n-1)), n/(n-1), 0) changes no bit of a product, a
    comparison or a square (``x * x`` for ``square_``), on ordinary, huge, tiny and
    subnormal entries."""
    buffers = FlatBuffers()
    buffers.sum = torch.empty(3, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    info = torch.finfo(dtype)
    x = torch.cat([torch.randn(4000, generator=g, dtype=torch.float64).to(dtype)
                   * torch.logspace(-30, 30, 4000, dtype=dtype),
                   torch.tensor([0.0, -0.0, info.tiny, info.tiny / 8, info.max / 3], dtype=dtype)])
    for n in (2, 3, 7, 24, 100, 128, 1000, 4096):
        for value in (n, n * n, n ** 3, n / (n - 1), 1 / (n * (n - 1)), 0):
            operand = buffers.scalar(value)
            assert isinstance(operand, torch.Tensor) and operand.dtype == dtype
            assert buffers.scalar(value) is operand  # kept, not made again
            assert torch.equal(torch.mul(x, operand), torch.mul(x, value))
            assert torch.equal(x.clone().mul_(operand), x.clone().mul_(value))
            assert torch.equal(torch.gt(x, operand), torch.gt(x, value))
            zero_d = x[7].clone()
            assert torch.equal(zero_d.clone().mul_(operand), zero_d.clone().mul_(value))
    assert torch.equal(x.clone().mul_(x), x.clone().square_())
    buffers.sum = torch.empty(3, dtype=torch.bfloat16)  # other dtypes: the number itself
    assert buffers.scalar(128) == 128 and not isinstance(buffers.scalar(128), torch.Tensor)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("deferred", [True, False])
def test_planned_statistics_equal_the_general_path_to_the_bit(monkeypatch, dtype, bias, deferred):
    """``_planned_stats`` (a kept plan, one straight pass) gives the general path's
    statistics and noise terms, to the bit, at every call on the same buffers; it is taken
    only where it applies (not for the first examples of a batch, nor before the buffers
    are fitted)."""
    import trainlab.probes.per_sample as per_sample

    taken = []
    planned = per_sample._planned_stats

    def spy(layout, records, rows, buffers, deferred):
        out = planned(layout, records, rows, buffers, deferred)
        if buffers is fast:
            taken.append(out is not None)
        return out

    monkeypatch.setattr(per_sample, "_planned_stats", spy)
    model = mlp(dtype, bias=bias)
    g = torch.Generator().manual_seed(4)
    fast, slow = FlatBuffers(), FlatBuffers()
    for k, rows in enumerate((24, 24, 7, 24)):
        x = torch.randn(rows, 9, generator=g).to(dtype)
        y = torch.randint(0, 4, (rows,), generator=g)
        records = recorded(model, x, y)
        got = captured_grad_stats(model, records, rows, buffers=fast, deferred=deferred)
        slow.plan = None  # the general path
        want = captured_grad_stats(model, records, rows, buffers=slow, deferred=deferred)
        assert taken[-1] == (k > 0)  # the first call fits the buffers (general path)
        assert got.method == want.method and got.reused_mean == want.reused_mean
        assert fast.sq_factor == slow.sq_factor and (k == 0 or not fast.pending)
        assert torch.equal(got.sq_norms, want.sq_norms)
        ours, theirs = _noise(got, fast), _noise(want, slow)
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
        assert torch.equal(got.flat_sum, want.flat_sum) and torch.equal(got.flat_sq, want.flat_sq)
    # the first 10 examples only: the general path
    records = recorded(model, torch.randn(24, 9, generator=g).to(dtype),
                       torch.randint(0, 4, (24,), generator=g))
    taken.clear()
    captured_grad_stats(model, records, 24, examples=10, buffers=fast)
    assert taken == []


def test_no_plan_for_a_frozen_weight_or_a_large_model():
    from trainlab.probes.per_sample import PLAN_MAX_NUMEL

    model = mlp(torch.float32)
    model[0].weight.requires_grad_(False)
    buffers = FlatBuffers().fit(_linear_layout(model), torch.empty(0))
    assert buffers.plan is None
    wide = nn.Sequential(nn.Linear(PLAN_MAX_NUMEL, 1))
    assert FlatBuffers().fit(_linear_layout(wide), torch.empty(0)).plan is None
    assert FlatBuffers().fit(_linear_layout(mlp(torch.float32)), torch.empty(0)).plan
