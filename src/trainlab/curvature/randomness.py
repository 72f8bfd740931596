"""A fixed draw of a model's randomness (dropout masks), replayed at every evaluation.

A model with dropout in training mode is a different function at every forward pass, so
its Hessian is undefined until the masks are fixed. :class:`FixedRandomness` records the
state of torch's global generator (and of the current CUDA device's, when there is one) once
and, around every forward pass run under :meth:`FixedRandomness.replay`, sets that state and
afterwards gives the caller's state back: every evaluation draws the same masks, and the
global generator ends exactly where it was (nothing is drawn from it, nothing seeded).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class FixedRandomness:
    """The random state of one moment, replayed around each forward pass.

    Args:
        device: the device the model runs on (its CUDA generator is fixed too).
    """

    def __init__(self, device: torch.device | str | None = None):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._state = self._capture()

    def _capture(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        cuda = (torch.cuda.get_rng_state(self.device)
                if self.device.type == "cuda" and torch.cuda.is_initialized() else None)
        return torch.get_rng_state(), cuda

    def _restore(self, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], self.device)

    @contextmanager
    def replay(self) -> Iterator[None]:
        """Run the block with the recorded random state; the caller's state is restored
        afterwards (also after an exception)."""
        caller = self._capture()
        self._restore(self._state)
        try:
            yield
        finally:
            self._restore(caller)
