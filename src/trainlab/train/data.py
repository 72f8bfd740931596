"""Mini-batch sampling with a private generator and an exact, checkpointable position."""

from __future__ import annotations

from typing import Any

import torch


class BatchSampler:
    """Epoch-wise random permutations of ``n`` examples, in batches of ``batch_size``
    (the last incomplete batch of an epoch is dropped). ``batch_size=0`` or ``>= n`` means
    full batch: every step sees the whole training set, in order."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n = n
        self.full = batch_size <= 0 or batch_size >= n
        self.batch_size = n if self.full else batch_size
        self.generator = generator
        self._perm = torch.arange(n)
        self._pos = n  # forces a fresh permutation on first use

    def next(self) -> torch.Tensor | slice:
        if self.full:
            return slice(None)
        if self._pos + self.batch_size > self.n:
            self._perm = torch.randperm(self.n, generator=self.generator)
            self._pos = 0
        idx = self._perm[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def state_dict(self) -> dict[str, Any]:
        return {"perm": self._perm, "pos": self._pos, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._perm, self._pos = state["perm"], state["pos"]
        self.generator.set_state(state["generator"])
