"""The one-pass C sums of the economy probes (``trainlab.probes.fused``): within their stated
tolerance (``fused.RTOL``: relative 1e-6 for float32 results, 1e-12 for float64) of float64
sums of the same elements, and of the eager torch path, on several shapes, dtypes and models;
the count of positive variances exact; every fallback to the eager path (turned off, no
compiler, a failed build, tensors it does not take) warned once, with the eager path's
numbers."""

from __future__ import annotations

import logging
import os
import threading

import pytest
import torch
from _probe_helpers import captured_records
from _probe_helpers import economy_history as run_economy
from torch import nn

from trainlab import log as log_module
from trainlab.probes import fused
from trainlab.probes.gradient_noise import _noise
from trainlab.probes.noise_plan import NoisePlan
from trainlab.probes.per_sample import (
    FlatBuffers,
    GradStats,
    Pending,
    _linear_layout,
    captured_grad_stats,
)

pytestmark = pytest.mark.skipif(fused.library() is None, reason="no C compiler here")

SHAPES = [(33, 9), (33,), (17, 33), (5000, 3), (1,), (0,), (4, 4100)]  # tails, > FLUSH, empty


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(log_module, "_WARNED", set())


def tensors(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    w = [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]
    grads = [torch.randn(s, generator=g, dtype=dtype) * 1e-3 for s in SHAPES]
    init = [t + 0.3 * torch.randn(s, generator=g, dtype=dtype) for t, s in zip(w, SHAPES)]
    prev = [t + 1e-4 * torch.randn(s, generator=g, dtype=dtype) for t, s in zip(w, SHAPES)]
    return w, grads, init, prev


def exact_norms(w, grads, init, prev):
    """Float64 norms of the same elements (the differences rounded to the dtype first, as
    ``torch.sub`` rounds them)."""
    rows = [grads, w, [a - b for a, b in zip(w, init)], init,
            [a - b for a, b in zip(w, prev)], prev]
    return torch.tensor([[t.double().pow(2).sum().sqrt().item() for t in row] for row in rows],
                        dtype=torch.float64)


def within(got: torch.Tensor, want: torch.Tensor, rtol: float) -> bool:
    return bool(((got.double() - want.double()).abs() <= rtol * want.double().abs()).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("want", [fused.FAMILIES, ("grad", "weight", "init_dist", "prev_dist")])
def test_norms_within_the_stated_tolerance_of_float64_and_of_torch(dtype, want):
    w, grads, init, prev = tensors(dtype, 0)
    got = fused.tensor_norms(w, grads, init, prev, want)
    assert got is not None and got.dtype == dtype and got.shape == (8, len(SHAPES))
    exact = exact_norms(w, grads, init, prev)
    torch_norms = torch.stack([torch.stack(torch._foreach_norm(row)) for row in (
        grads, w, torch._foreach_sub(w, init), init, torch._foreach_sub(w, prev), prev)])
    rows = [fused.FAMILIES.index(f) for f in want]
    assert within(got[rows], exact[rows], fused.RTOL[dtype])
    assert within(got[rows], torch_norms[rows], 2 * fused.RTOL[dtype])
    # the rounding of the difference is the dtype's: the 1e-4 update is not lost
    assert got[4, 0] > 0 and not within(got[4], exact[1], 1e-2)


def test_norm_of_an_adam_like_update_of_a_million_entries_within_the_tolerance():
    """Differences whose entries all have one size (an Adam update) are where float32
    accumulation drifts (torch's float32 norm of this one is some 6e-4 off on torch 2.13):
    the fused norm stays within the stated tolerance of the float64 norm."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1_000_000, generator=g)
    prev = w + 1e-3 * torch.sign(torch.randn(1_000_000, generator=g))
    got = fused.tensor_norms([w], None, None, [prev], ("prev_dist",))[4, 0]
    assert within(got, (w - prev).double().norm(), fused.RTOL[torch.float32])


def test_norms_of_missing_arrays_and_cached_families():
    w, grads, _, _ = tensors(torch.float32, 1)
    got = fused.tensor_norms(w, [], [], [], ("weight",))
    assert within(got[1], exact_norms(w, grads, w, w)[1], fused.RTOL[torch.float32])
    # a family computed from the previous parameters equals the weight family of the same
    # tensors, to the bit (the monitor reuses the step before's weight norms)
    again = fused.tensor_norms(w, grads, w, w, fused.FAMILIES)
    assert torch.equal(again[5], got[1]) and torch.equal(again[3], got[1])
    assert torch.equal(again[2], torch.zeros(len(w)))


def gsnr_reference(flat_sum, flat_sq, segments, sq_factor, n):
    """The per-element operations of ``_noise`` in the vectors' dtype, sums in float64."""
    s = flat_sum.clone()
    for off, size, source, factor in segments:
        f = torch.tensor(factor, dtype=s.dtype)
        s[off:off + size] = (s[off:off + size] if source is None else source.reshape(-1)) * f
    s2 = s * s
    v = flat_sq * torch.tensor(sq_factor, dtype=s.dtype) if sq_factor != 1 else flat_sq
    v = (v * torch.tensor(n, dtype=s.dtype)) - s2
    m = (v > 0).to(s.dtype)
    r = (m * s2) / v.clamp_min(torch.finfo(s.dtype).tiny)
    return s2.double().sum().item(), r.double().sum().item(), int(m.sum().item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size", [1, 7, 4099, 70000, 1_000_003])
def test_gsnr_sums_within_the_stated_tolerance_and_the_count_exact(dtype, size):
    g = torch.Generator().manual_seed(size)
    flat_sum = torch.randn(size, generator=g, dtype=dtype)
    flat_sq = flat_sum * flat_sum / 128 + torch.rand(size, generator=g, dtype=dtype)
    flat_sq[::5] = flat_sum[::5] ** 2 / 128  # zero or negative variances: masked out
    source = torch.randn(size // 3, generator=g, dtype=dtype)
    for segments, sq_factor in (([], 1), ([(1, size // 3, source, 128)], 16384),
                                ([(0, size // 2, None, 128)] if size > 1 else [], 1)):
        segments = [s for s in segments if s[1] > 0]
        got = fused.gsnr_sums(flat_sum, flat_sq, segments, sq_factor, 128)
        want = gsnr_reference(flat_sum, flat_sq, segments, sq_factor, 128)
        assert got[2] == want[2]
        assert abs(got[0] - want[0]) <= fused.RTOL[dtype] * abs(want[0])
        assert abs(got[1] - want[1]) <= fused.RTOL[dtype] * abs(want[1])


def test_gsnr_sums_keep_a_nan_and_an_infinite_entry():
    flat_sum = torch.tensor([1.0, float("inf"), 2.0, 3.0, 4.0])
    flat_sq = torch.tensor([1.0, 1.0, 1.0, float("nan"), 1.0])
    got = fused.gsnr_sums(flat_sum, flat_sq, [], 1, 4)
    want = gsnr_reference(flat_sum, flat_sq, [], 1, 4)
    assert got[2] == want[2]
    assert [torch.tensor(x).isnan().item() for x in got[:2]] == [
        torch.tensor(x).isnan().item() for x in want[:2]]


def flat_stats(dtype, seed, size=300, n=16):
    g = torch.Generator().manual_seed(seed)
    buffers = FlatBuffers()
    buffers.sum = torch.randn(size, generator=g, dtype=dtype)
    buffers.sq = buffers.sum ** 2 / n + torch.rand(size, generator=g, dtype=dtype)
    buffers.mask = torch.empty(size, dtype=dtype)
    source = torch.randn(40, generator=g, dtype=dtype)
    buffers.pending = [Pending(10, 40, source, n, buffers.sum[10:50]),
                       Pending(60, 20, None, n, buffers.sum[60:80])]
    buffers.sq_factor = n * n
    sq_norms = torch.rand(n, generator=g, dtype=dtype) * size
    return GradStats(n, sq_norms, {}, {}, "captured", True, buffers.sum, buffers.sq), buffers


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_noise_terms_of_both_paths_agree_within_the_tolerance(monkeypatch, dtype):
    stats, buffers = flat_stats(dtype, 0)
    got = _noise(stats, buffers)  # fused: leaves the buffers as they were
    assert buffers.pending == [] and buffers.sq_factor == 1
    stats, buffers = flat_stats(dtype, 0)
    monkeypatch.setattr(fused, "_enabled", False)
    want = _noise(stats, buffers)
    rtol = 4 * fused.RTOL[dtype]
    n, mean_sq = stats.n, stats.sq_norms.mean().double()
    # |G|^2 and tr(Sigma) are differences of two terms: the tolerance is on the terms
    scale = [mean_sq * n / (n - 1) * 2, mean_sq * 2 / (n - 1), want[2].double()]
    for a, b, s in zip(got, want, scale):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert abs(a.double() - b.double()) <= rtol * abs(s)


def economy_history(dtype, every, width, use_fused, monkeypatch):
    monkeypatch.setattr(fused, "_enabled", use_fused)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(9, width), nn.ReLU(), nn.Linear(width, 4)).to(dtype)
    return run_economy(model, dtype, steps=7, batch=24, every=every)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("every", "width"), [(1, 33), (3, 130)])
def test_economy_histories_of_both_paths_agree_within_the_tolerance(monkeypatch, dtype, every,
                                                                    width):
    fast = economy_history(dtype, every, width, True, monkeypatch)
    slow = economy_history(dtype, every, width, False, monkeypatch)
    assert set(fast) == set(slow) and {"gsnr", "gns/grad_sq", "rotation/0.weight"} <= set(fast)
    rtol = 8 * fused.RTOL[dtype]  # a few roundings after the sums (ratios, norms of norms)
    differ = 0
    for name, rows in slow.items():
        assert [s for s, _ in fast[name]] == [s for s, _ in rows]
        for (step, a), (_, b) in zip(fast[name], rows):
            differ += a != b
            if name in ("gns/grad_sq", "gns/trace_cov", "gns"):
                # differences of two terms, both of the size of the mean |g_i|^2
                m = dict(slow["per_sample_grad_norm/mean"])[step]
                sd = dict(slow["per_sample_grad_norm/std"])[step]
                size = (m * m + sd * sd) * (1 if name != "gns" else abs(b) / abs(
                    dict(slow["gns/grad_sq"])[step]))
                assert abs(a - b) <= 4 * rtol * size, (name, step, a, b)
            elif name.startswith("rotation/"):  # 1 - cos from three norms: absolute
                assert abs(a - b) <= rtol * 4, (name, step, a, b)
            else:
                assert abs(a - b) <= rtol * abs(b), (name, step, a, b)
    assert differ > 0  # the fused path ran (its sums are not torch's bits)


def test_turned_off_gives_the_eager_bits_and_warns_once(monkeypatch, caplog):
    w, grads, init, prev = tensors(torch.float32, 2)
    monkeypatch.setattr(fused, "_enabled", None)
    monkeypatch.setenv(fused.ENV, "0")
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        assert fused.tensor_norms(w, grads, init, prev, fused.FAMILIES) is None
        assert fused.gsnr_sums(w[0].reshape(-1), w[0].reshape(-1), [], 1, 4) is None
    assert [r.getMessage() for r in caplog.records].count(
        "fused economy sums turned off (TRAINLAB_FUSED=0 or set_enabled(False)): the eager "
        "torch path is used") == 1
    assert not fused.enabled()
    fused.set_enabled(True)
    assert fused.enabled()


def test_tensors_it_does_not_take_go_the_eager_way_with_one_warning(caplog):
    w, grads, init, prev = tensors(torch.float32, 3)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        for _ in range(3):
            assert fused.tensor_norms([w[0].T, *w[1:]], grads, init, prev, ("weight",)) is None
            assert fused.tensor_norms([t.half() for t in w], None, None, None,
                                      ("weight",)) is None
            assert fused.tensor_norms(w, grads, [t.double() for t in init], prev,
                                      ("weight",)) is None
            assert fused.gsnr_sums(w[0].T, w[0].T, [], 1, 4) is None
    assert len(caplog.records) == 3  # one per reason, not per call


def rebuild(monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(fused, "_lib", None)
    monkeypatch.setattr(fused, "_failed", False)


def test_no_compiler_or_a_failed_build_falls_back_with_one_warning(monkeypatch, tmp_path,
                                                                   caplog):
    w, grads, init, prev = tensors(torch.float32, 4)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        rebuild(monkeypatch, tmp_path)
        monkeypatch.setattr(fused, "_compiler", lambda: None)
        assert fused.tensor_norms(w, grads, init, prev, ("weight",)) is None
        assert fused.tensor_norms(w, grads, init, prev, ("weight",)) is None
        assert "no C compiler found" in caplog.records[-1].getMessage()
        monkeypatch.undo()
        monkeypatch.setattr(log_module, "_WARNED", set())
        rebuild(monkeypatch, tmp_path)
        monkeypatch.setattr(fused, "SOURCE", "this is not C;")
        assert fused.library() is None
        assert "this is not C" in caplog.records[-1].getMessage()  # the compiler's words
    assert len(caplog.records) == 2
    assert not list(tmp_path.rglob("*.so"))


def test_concurrent_builds_leave_one_library_and_reuse_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    paths: list = []
    threads = [threading.Thread(target=lambda: paths.append(fused.build())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(paths) == 2 and paths[0] == paths[1] and paths[0].parent == tmp_path / "fused"
    assert [p.name for p in (tmp_path / "fused").iterdir()] == [paths[0].name]  # no temp left
    stamp = os.stat(paths[0]).st_mtime_ns
    assert fused.build() == paths[0] and os.stat(paths[0]).st_mtime_ns == stamp  # not rebuilt


def counted(monkeypatch, name: str) -> list:
    """The arguments of every call of ``fused.<name>`` from now on."""
    calls: list = []
    real = getattr(fused, name)
    monkeypatch.setattr(fused, name, lambda *a: calls.append(a) or real(*a))
    return calls


def test_planned_grad_noise_layout_takes_the_fused_path(monkeypatch):
    """The probe's general path (deferred statistics in its buffers; the NoisePlan, which
    calls the C functions directly, off) reaches the C sums."""
    monkeypatch.setattr(NoisePlan, "build", classmethod(lambda cls, *args: None))
    calls = counted(monkeypatch, "gsnr_sums")
    history = economy_history(torch.float32, 1, 33, True, monkeypatch)
    assert len(calls) == 7 and len(history["gsnr"]) == 7
    model = nn.Sequential(nn.Linear(9, 33), nn.ReLU(), nn.Linear(33, 4))
    assert sum(_linear_layout(model).sizes) == calls[0][0].numel()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_example_rows_give_the_squares_bits_and_sums_within_the_tolerance(dtype):
    g = torch.Generator().manual_seed(7)
    batch, shapes = 13, [(9, 33, True), (33, 17, False), (17, 4, True)]  # (I, O, bias)
    layers, want_rows = [], torch.zeros(batch, dtype=torch.float64)
    for i, o, bias in shapes:
        a = torch.randn(batch, i, generator=g, dtype=dtype)
        d = torch.randn(batch, o, generator=g, dtype=dtype) * 1e-2
        layers.append((a, d, torch.empty(batch, i, dtype=dtype),
                       torch.empty(batch, o, dtype=dtype),
                       torch.empty(o, dtype=dtype) if bias else None))
        want_rows += (d.double() ** 2).sum(1) * ((a.double() ** 2).sum(1) + bias)
    out = torch.empty(batch, dtype=dtype)
    scratch = torch.empty(batch + 33, dtype=torch.float64)
    assert fused.example_rows(layers, 169.0, scratch, out)
    assert within(out, want_rows * 169, fused.RTOL[dtype])
    for a, d, a_sq, d_sq, bias_sq in layers:
        assert torch.equal(a_sq, a * a) and torch.equal(d_sq, d * d)
        if bias_sq is not None:
            assert within(bias_sq, (d.double() ** 2).sum(0), fused.RTOL[dtype])
    with pytest.raises(ValueError, match="scratch"):
        fused.example_rows(layers, 1.0, scratch[:batch + 5], out)


def test_planned_and_general_statistics_take_the_fused_rows_in_a_monitor(monkeypatch):
    monkeypatch.setattr(NoisePlan, "build", classmethod(lambda cls, *args: None))
    calls = counted(monkeypatch, "example_rows")
    history = economy_history(torch.float64, 1, 33, True, monkeypatch)
    # the general path at the first call (the plan is made then), the planned one after
    assert len(calls) == 7 and len(history["per_sample_grad_norm/mean"]) == 7


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_planned_and_general_paths_give_the_same_bits_on_the_fused_path(dtype, bias):
    """A run resumed from a checkpoint takes the general path at its first step where the
    uninterrupted run took the planned one: both must give the same numbers."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(9, 33, bias=bias), nn.ReLU(), nn.Linear(33, 17),
                          nn.Tanh(), nn.Linear(17, 4)).to(dtype)
    g = torch.Generator().manual_seed(4)
    fast, slow = FlatBuffers(), FlatBuffers()
    for _ in range(3):
        x, y = torch.randn(24, 9, generator=g).to(dtype), torch.randint(0, 4, (24,), generator=g)
        records = captured_records(model, x, y)
        got = captured_grad_stats(model, records, 24, buffers=fast, deferred=True)
        slow.plan = None  # the general path
        want = captured_grad_stats(model, records, 24, buffers=slow, deferred=True)
        assert torch.equal(got.sq_norms, want.sq_norms) and torch.equal(got.flat_sq, want.flat_sq)
        assert [(p.offset, p.size, p.factor) for p in fast.pending] == [
            (p.offset, p.size, p.factor) for p in slow.pending]
        assert all(torch.equal(a, b) for a, b in zip(_noise(got, fast), _noise(want, slow)))


def test_malformed_calls_are_refused_before_any_memory_is_read(caplog):
    """The C functions read raw pointers: sizes that do not match are refused in Python."""
    w, grads, init, prev = tensors(torch.float32, 5)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        assert fused.tensor_norms(w, grads, [t[:1] for t in init], prev, ("weight",)) is None
        assert fused.tensor_norms(w, grads[:-1], init, prev, ("weight",)) is None
    v = torch.ones(10)
    for segments in ([(0, 5, None, 2), (3, 4, None, 2)], [(8, 5, None, 2)],
                     [(0, 5, torch.ones(4), 2)]):
        with pytest.raises(ValueError, match="segments"):
            fused.gsnr_sums(v, v, segments, 1, 4)
    assert fused.gsnr_sums(v, torch.ones(9), [], 1, 4) is None
    a, d = torch.ones(4, 3), torch.ones(4, 2)
    with pytest.raises(ValueError, match="each layer"):
        fused.example_rows([(a, d, torch.empty(4, 2), torch.empty(4, 2), None)], 1.0,
                           torch.empty(9, dtype=torch.float64), torch.empty(4))


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners and modes")
def test_a_cache_others_may_write_is_never_loaded(monkeypatch, tmp_path, caplog):
    """A library planted in a shared cache would run its code when loaded: a cache directory
    or library writable by group or others is refused and the eager path is used."""
    shared = tmp_path / "shared"
    (shared / "fused").mkdir(parents=True)
    os.chmod(shared / "fused", 0o777)
    with pytest.raises(RuntimeError, match="not private"):
        fused.build(shared / "fused")
    os.chmod(shared / "fused", 0o700)
    built = fused.build(shared / "fused")
    os.chmod(built, 0o666)
    with pytest.raises(RuntimeError, match="not private"):
        fused.build(shared / "fused")
    os.chmod(shared / "fused", 0o777)
    monkeypatch.setattr(log_module, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        rebuild(monkeypatch, shared)
        assert fused.library() is None
    assert "not private" in caplog.records[-1].getMessage()
