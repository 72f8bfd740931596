"""The model registry: name -> ``builder(input_shape, num_outputs, **params) -> nn.Module``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from trainlab.errors import ConfigError
from trainlab.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def build_model(name: str, input_shape: tuple[int, ...], num_outputs: int, **params: Any
                ) -> nn.Module:
    """Build the registered model ``name``. Parameters are initialized by torch's defaults from
    the *global* RNG; trainlab always re-initializes with ``trainlab.init.apply`` and a
    generator afterwards, so the run's seed alone decides the weights."""
    builder = MODELS.get(name)
    if "activation" in params:
        params["activation_name"] = params.pop("activation")
    try:
        return builder(tuple(input_shape), num_outputs, **params)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None
