"""The one source of an optimizer's random draws: the caller's generator, or a private one.

Library code never draws from (or seeds) torch's global RNG. An optimizer that draws (Gravity's
initial velocity, Hutchinson probes, Langevin or OU noise, PSGD's probes) takes
``generator=``; when the caller passes none it gets a private generator seeded with
:data:`DEFAULT_SEED` on the parameters' device, so a run is reproducible and the caller's
global RNG stream is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

DEFAULT_SEED = 0


def _first_tensor(params: Iterable[Any]) -> torch.Tensor | None:
    for item in params:
        if isinstance(item, dict):
            found = _first_tensor(item["params"] if not isinstance(item["params"], torch.Tensor)
                                  else [item["params"]])
            if found is not None:
                return found
        elif isinstance(item, torch.Tensor):
            return item
    return None


def optimizer_generator(generator: torch.Generator | None, params: Iterable[Any]
                        ) -> torch.Generator:
    """``generator`` itself, or a new generator seeded with :data:`DEFAULT_SEED` on the device
    of the first parameter in ``params`` (a list of tensors or of param-group dicts)."""
    if generator is not None:
        return generator
    first = _first_tensor(params)
    device = first.device if first is not None else torch.device("cpu")
    return torch.Generator(device=device).manual_seed(DEFAULT_SEED)


class DrawsRandom:
    """Mixin of the optimizers that hold ``self.generator``: its state travels in the
    optimizer's ``state_dict`` (key ``"generator_state"``), so a resumed run draws exactly what
    an uninterrupted one would."""

    generator: torch.Generator

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()  # type: ignore[misc]
        state["generator_state"] = self.generator.get_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        generator_state = state_dict.pop("generator_state", None)
        super().load_state_dict(state_dict)  # type: ignore[misc]
        if generator_state is not None:
            self.generator.set_state(generator_state)
