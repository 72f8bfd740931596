"""The fused norm pass's summation order, pinned to the bit: each per-tensor norm of
``fused.tensor_norms`` equals an emulation (numpy, written from the order the module
states) of lanes of 8 entries summed in the dtype, each block's lane sums widened and
added pairwise into a float64 total, the tail added one square at a time, and the root
rounded once. A rewrite of the C loop (e.g. how a block's lanes are added) that changed
any bit fails here, not only in the monitors' histories."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainlab.probes import fused

pytestmark = pytest.mark.skipif(not fused.available() or fused.library() is None,
                                reason="no C compiler: the fused path is not built")


def emulated_norm(x: np.ndarray, dtype: type) -> float:
    """``||x||`` in the fused pass's order: lanes of 8 entries, each lane summing at most 8
    (float32) or 512 (float64) squares in the dtype; each block's 8 lane sums widened to
    float64 and added as ((0+1)+(2+3))+((4+5)+(6+7)) into the float64 total; the tail's
    squares (rounded to the dtype) added one by one into a float64 sum; the root of the
    two sums' sum rounded once to the dtype."""
    iters = 8 if dtype == np.float32 else 512
    x = x.astype(dtype)
    n, i, total = x.size, 0, 0.0
    while i + 8 <= n:
        take = min(iters, (n - i) // 8)
        lanes = np.zeros(8, dtype)
        for row in x[i:i + 8 * take].reshape(take, 8):
            lanes = (lanes + row * row).astype(dtype)
        v = lanes.astype(np.float64)
        total += ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
        i += 8 * take
    tail = 0.0
    for value in x[i:]:
        tail += float(dtype(value * value))
    return float(dtype(np.sqrt(total + tail)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_norms_follow_the_stated_order_to_the_bit(dtype):
    """Weight norms, distances (the differences rounded to the dtype) and the initial
    tensors' norms of tensors from 1 to 40,000 entries (tails, one and many blocks,
    float64's 512-term lanes), values over six decades, with and without the squares of
    the initial tensors (the C function's two variants)."""
    g = torch.Generator().manual_seed(11)
    sizes = [1, 7, 8, 9, 63, 64, 65, 127, 129, 511, 512, 513, 4095, 4096, 4100, 5000, 40000]
    w = [torch.randn(n, generator=g, dtype=torch.float64).mul_(
        10.0 ** torch.randint(-3, 3, (n,), generator=g)).to(dtype) for n in sizes]
    a = [t + 0.01 * torch.randn(t.shape, generator=g, dtype=dtype) for t in w]
    table = fused.tensor_norms(w, None, a, None, ("weight", "init_dist", "init"))
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    for k, (t, t0) in enumerate(zip(w, a)):
        assert table[1, k].item() == emulated_norm(t.numpy(), np_dtype), sizes[k]
        assert table[2, k].item() == emulated_norm((t - t0).numpy(), np_dtype), sizes[k]
        assert table[3, k].item() == emulated_norm(t0.numpy(), np_dtype), sizes[k]
    # without the squares of the initial tensors: the pass's other variant, the same bits
    four = fused.tensor_norms(w, None, a, None, ("weight", "init_dist"))
    assert torch.equal(four[1:3], table[1:3])
