"""The gradient-transform registry: name -> factory ``(**hyper) -> Transform``."""

from __future__ import annotations

from collections.abc import Callable

from trainlab.optim.transforms._base import Transform
from trainlab.registry import Registry

TRANSFORMS: Registry[Callable[..., Transform]] = Registry("transform")
