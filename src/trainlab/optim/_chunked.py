"""Cache-sized blocks of parameters and optimizer state: the iteration behind the element-wise
optimizers' CPU fast paths.

An element-wise update written as k separate tensor ops streams every buffer through memory k
times. Cut into blocks of ``BLOCK_ELEMENTS`` elements (256 KiB per fp32 buffer), all k ops of a
block find their operands in the L2 cache, so memory traffic drops to one read (and write) per
buffer, as in a fused kernel. Large tensors are cut into chunks; small tensors are packed
whole into one block (``torch._foreach_*`` ops over the block's lists then cost one call per op
and block, not per tensor). Element order inside a tensor is unchanged, so an element-wise
update computed block by block equals the same update computed tensor by tensor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch

BLOCK_ELEMENTS = 1 << 16  # 64k elements: 5-6 fp32 buffers of a block fit in a 2 MiB L2
FAST_DTYPES = (torch.float32, torch.float64)


class Block(NamedTuple):
    """One block: ``index[j]`` is the tensor (position in the input lists) of the ``j``-th
    view; ``views[k]`` holds the flat views into the ``k``-th input list."""

    index: list[int]
    views: tuple[list[torch.Tensor], ...]


def can_block(*lists: Sequence[torch.Tensor]) -> bool:
    """Whether the fast paths apply: every tensor a dense, contiguous, non-empty CPU
    float32/float64 tensor, one dtype throughout, and the lists aligned (same length, same
    sizes)."""
    if not lists or not lists[0]:
        return False
    dtype, n = lists[0][0].dtype, len(lists[0])
    if dtype not in FAST_DTYPES:
        return False
    for lst in lists:
        if len(lst) != n:
            return False
        for t, ref in zip(lst, lists[0]):
            if (t.device.type != "cpu" or t.layout != torch.strided or t.dtype != dtype
                    or not t.is_contiguous() or t.numel() != ref.numel() or not t.numel()):
                return False
    return True


def blocks(lists: Sequence[Sequence[torch.Tensor]], size: int = BLOCK_ELEMENTS
           ) -> Iterator[Block]:
    """The blocks of aligned tensor lists (as accepted by :func:`can_block`): each tensor of
    ``size`` elements or more is cut into chunks of at most ``size``; smaller ones are packed,
    whole and in order, into blocks of at most ``size`` elements."""
    flat = [[t.view(-1) for t in lst] for lst in lists]
    index: list[int] = []
    pending: tuple[list[torch.Tensor], ...] = tuple([] for _ in flat)
    count = 0
    for i, t in enumerate(flat[0]):
        n = t.numel()
        if n >= size:
            for a in range(0, n, size):
                yield Block([i], tuple([f[i][a:a + size]] for f in flat))
            continue
        if count + n > size:
            yield Block(index, pending)
            index, pending, count = [], tuple([] for _ in flat), 0
        index.append(i)
        for views, f in zip(pending, flat):
            views.append(f[i])
        count += n
    if index:
        yield Block(index, pending)


def scratch_buffer(like: Sequence[torch.Tensor], size: int = BLOCK_ELEMENTS) -> torch.Tensor:
    """A flat scratch buffer big enough for any block of ``like`` (the block size, or all of
    ``like`` when smaller), of ``like``'s dtype and device."""
    n = min(size, sum(t.numel() for t in like))
    return torch.empty(n, dtype=like[0].dtype, device=like[0].device)


def scratch_views(buffer: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Consecutive views of the flat ``buffer`` with the sizes of ``like`` (a block's views):
    scratch space reused by every block, so a step allocates nothing model-sized."""
    out, a = [], 0
    for t in like:
        n = t.numel()
        out.append(buffer[a:a + n])
        a += n
    return out
