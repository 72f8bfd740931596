"""grad-noise's fused C passes pinned to the bit against numpy emulations of the order
``fused`` states: the GSNR sums (:func:`fused.gsnr_sums`: per element the eager path's
operations in the dtype; lanes of 8 entries summing at most 8 (float32) or 512 (float64)
terms in the dtype, each block's lane sums widened and added as
((0+1)+(2+3))+((4+5)+(6+7)) into the range's float64 sum, then the tail's terms one by one
into it, range by range in offset order) and the per-example rows
(:func:`fused.example_rows`: the squares, their row sums in the same lanes, the bias's
column sums in batch order in float64, the products of the row sums, one rounding). A
rewrite of the C loops that changed any bit fails here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainlab.probes import fused

pytestmark = pytest.mark.skipif(not fused.available() or fused.library() is None,
                                reason="no C compiler: the fused path is not built")

NP = {torch.float32: np.float32, torch.float64: np.float64}


def lanes_then_tail(terms: np.ndarray) -> float:
    """A float64 sum of ``terms`` (already in their dtype) in the C passes' order: blocks of
    8 lanes, each lane adding at most 8 (float32) or 512 (float64) terms in the dtype from
    zero, each block's lanes widened and added pairwise into the sum; the terms left over
    (fewer than 8) added one by one into the same sum."""
    dtype = terms.dtype.type
    per_lane = 8 if dtype == np.float32 else 512
    total, at, size = 0.0, 0, terms.size
    while at + 8 <= size:
        rows = min(per_lane, (size - at) // 8)
        lanes = np.zeros(8, dtype)
        for row in terms[at:at + 8 * rows].reshape(rows, 8):
            lanes = lanes + row
        w = lanes.astype(np.float64)
        total += ((w[0] + w[1]) + (w[2] + w[3])) + ((w[4] + w[5]) + (w[6] + w[7]))
        at += 8 * rows
    for value in terms[at:]:
        total += float(value)
    return total


def emulated_gsnr(flat_sum, flat_sq, segments, sq_factor, n, dtype):
    """``gsnr_sums`` in the stated order: ranges between and on the segments, each one's
    elementwise terms in the dtype and its two sums by :func:`lanes_then_tail`."""
    t = NP[dtype]
    s_all, q_all = flat_sum.numpy(), flat_sq.numpy()
    qf, nn, tiny = t(sq_factor), t(n), t(torch.finfo(dtype).tiny)
    ranges, at = [], 0
    for off, size, source, factor in segments:
        ranges.append(s_all[at:off])
        scaled = (s_all[off:off + size] if source is None else source.numpy()) * t(factor)
        ranges.append(scaled.astype(t))
        at = off + size
    ranges.append(s_all[at:])
    out, at = [0.0, 0.0, 0], 0
    with np.errstate(all="ignore"):
        for s in ranges:
            q = q_all[at:at + s.size]
            at += s.size
            s2 = s * s
            v = ((q * qf) if sq_factor != 1 else q) * nn - s2
            m = (v > 0).astype(t)
            r = (m * s2) / np.where(v < tiny, tiny, v)
            out[0] += lanes_then_tail(s2)
            out[1] += lanes_then_tail(r)
            out[2] += int((v > 0).sum())
    return tuple(out)


def _hex(values):
    return [float(v).hex() for v in values]


def lane_scaled(shape, dtype, generator):
    """Normal values times 10^e, e in -6..6 drawn per block and lane (the last dimension's
    entries j // (8 * terms per lane), j % 8): lane sums of one block whose magnitudes
    differ by up to 10^24, so that the order of a block's additions shows in the bits."""
    width = shape[-1]
    block = 64 if dtype == torch.float32 else 4096
    e = torch.randint(-6, 7, (width // block + 1, 8), generator=generator)
    j = torch.arange(width)
    scale = torch.full((width,), 10.0, dtype=torch.float64) ** e[j // block, j % 8]
    return torch.randn(shape, generator=generator, dtype=torch.float64).mul_(scale)


def _vectors(dtype, size, generator):
    """Gradient sums and sums of squares whose variances v = Q n - S^2 are positive, zero,
    negative, below the smallest normal, infinite and NaN."""
    s = lane_scaled((size,), dtype, generator)
    q = s * s / 8 * torch.rand(size, generator=generator, dtype=torch.float64).mul_(3)
    s, q = s.to(dtype), q.to(dtype)
    if size > 40:
        q[5], s[6], q[7], s[9] = 0.0, 0.0, float("inf"), float("nan")
        s[11] = torch.finfo(dtype).tiny ** 0.5
        q[11] = (s[11] * s[11]) / 8 * (1 + torch.finfo(dtype).eps)  # v just above 0
    return s, q


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gsnr_sums_follow_the_stated_order_to_the_bit(dtype):
    """Vectors of 1 to 70,000 entries (float64's 512-term lanes, blocks and tails), with no
    segment, with segments from sources and scaled in place (lengths 0 to 5,003), the
    factor of Q applied or not."""
    g = torch.Generator().manual_seed(3)
    for size in (1, 7, 8, 63, 64, 65, 513, 4096, 4103, 70_000):
        s, q = _vectors(dtype, size, g)
        plans = [[]]
        if size >= 64:
            cut = size // 3
            src = torch.randn(cut, generator=g, dtype=dtype)
            plans.append([(0, cut, src, 16.0), (cut + 3, size // 2 - 3, None, 0.5),
                          (size - 2, 0, None, 3.0)])
            plans.append([(5, size - 7, torch.randn(size - 7, generator=g, dtype=dtype), 4.0)])
        for segments in plans:
            for sq_factor, n in ((1.0, 8.0), (64.0, 8.0)):
                got = fused.gsnr_sums(s, q, segments, sq_factor, n)
                want = emulated_gsnr(s, q, segments, sq_factor, n, dtype)
                assert got[2] == want[2], (size, len(segments), sq_factor)
                assert _hex(got[:2]) == _hex(want[:2]), (size, len(segments), sq_factor)


def test_gsnr_count_folded_in_chunks_is_exact(monkeypatch, tmp_path):
    """The counts of positive variances leave the vector lanes every ``COUNT_BLOCKS``
    blocks; a build with that period set to 3 blocks gives the same three sums, to the
    bit, as the emulation (the period itself is too many entries for a fast test)."""
    assert "#define COUNT_BLOCKS (1 << 20)" in fused.SOURCE
    monkeypatch.setattr(fused, "SOURCE", fused.SOURCE.replace(
        "#define COUNT_BLOCKS (1 << 20)", "#define COUNT_BLOCKS 3"))
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(fused, "_lib", None)
    monkeypatch.setattr(fused, "_failed", False)
    g = torch.Generator().manual_seed(5)
    for dtype, size in ((torch.float32, 64 * 7 + 13), (torch.float64, 512 * 8 * 5 + 21)):
        s, q = _vectors(dtype, size, g)
        segments = [(70, size // 2, None, 2.0)]
        got = fused.gsnr_sums(s, q, segments, 4.0, 2.0)
        assert fused._lib is not None and str(tmp_path) in fused._lib._name
        want = emulated_gsnr(s, q, segments, 4.0, 2.0, dtype)
        assert got[2] == want[2] and _hex(got[:2]) == _hex(want[:2]), dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_example_rows_follow_the_stated_order_to_the_bit(dtype):
    """Layers of widths 1 to 1,100 (tails, one and many blocks, float64's long lanes), with
    and without a bias: the squares written, the bias's column sums and the per-example
    squared norms equal an emulation of the stated order to the bit."""
    g = torch.Generator().manual_seed(7)
    t, batch, factor = NP[dtype], 5, 25.0
    shapes = [(3, 1, True), (65, 9, False), (1100, 520, True), (8, 7, True)]
    layers = []
    for width_in, width_out, bias in shapes:
        a = lane_scaled((batch, width_in), dtype, g).to(dtype)
        d = lane_scaled((batch, width_out), dtype, g).mul_(1e-3).to(dtype)
        layers.append((a, d, torch.empty_like(a), torch.empty_like(d),
                       torch.empty(width_out, dtype=dtype) if bias else None))
    out = torch.empty(batch, dtype=dtype)
    scratch = torch.empty(batch + 520, dtype=torch.float64)
    assert fused.example_rows(layers, factor, scratch, out)
    acc = np.zeros(batch)
    for a, d, a_sq, d_sq, bias_sq in layers:
        a2, d2 = a.numpy() * a.numpy(), d.numpy() * d.numpy()
        assert np.array_equal(a_sq.numpy(), a2) and np.array_equal(d_sq.numpy(), d2)
        col = np.zeros(d2.shape[1])
        for b in range(batch):
            col = col + d2[b].astype(np.float64)
            ra = lanes_then_tail(a2[b])
            acc[b] += lanes_then_tail(d2[b]) * (ra + 1 if bias_sq is not None else ra)
        if bias_sq is not None:
            assert _hex(bias_sq.tolist()) == _hex(col.astype(t).tolist())
    assert _hex(out.tolist()) == _hex((acc * factor).astype(t).tolist())
