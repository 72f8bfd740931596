"""Apply a transform to some parameters only."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from trainlab.optim.transforms._base import Params, Transform, Updates


def masked(inner: Transform, mask: Callable[[Params], Sequence[bool]]) -> Transform:
    """Run ``inner`` on the parameters where ``mask(params)`` is true; pass the others' updates
    through unchanged. ``inner`` sees ``None`` for the masked-out ones (so it keeps no moving
    state for them)."""

    def update(updates: Updates, state: object, params: Params) -> tuple[Updates, object]:
        keep = list(mask(params))
        if len(keep) != len(params):
            raise ValueError(f"mask returned {len(keep)} flags for {len(params)} parameters")
        sub = [u if k else None for u, k in zip(updates, keep)]
        new, state = inner.update(sub, state, params)
        return [n if k else u for u, n, k in zip(updates, new, keep)], state

    return Transform(inner.init, update)
