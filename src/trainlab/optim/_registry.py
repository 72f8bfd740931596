"""The optimizer registry and :func:`build_optimizer`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch

from trainlab.errors import ConfigError
from trainlab.registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")


def build_optimizer(name: str, params: Iterable[Any], lr: float, **hyper: Any
                    ) -> torch.optim.Optimizer:
    """Build the registered optimizer ``name`` over ``params`` with peak learning rate ``lr``.

    Unknown hyper-parameter names raise :class:`ConfigError` listing the accepted ones (no
    silent typos); invalid values raise the optimizer's own ``ValueError``.
    """
    factory = OPTIMIZERS.get(name)
    sig = inspect.signature(factory)
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        accepted = [p for p in sig.parameters if p not in ("params", "lr", "self")]
        unknown = sorted(set(hyper) - set(accepted))
        if unknown:
            raise ConfigError(f"optimizer {name!r} got unknown hyper-parameter(s) {unknown}; "
                              f"accepted: {accepted}")
    try:
        return factory(params, lr=lr, **hyper)
    except ValueError as exc:
        raise ConfigError(f"optimizer {name!r}: {exc}") from None
