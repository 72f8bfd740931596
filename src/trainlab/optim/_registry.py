"""The optimizer registry, :func:`optimizer_info` and :func:`build_optimizer`."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from trainlab.errors import ConfigError, TrainlabError
from trainlab.registry import EntryInfo, Registry


@dataclass(frozen=True)
class OptimizerInfo(EntryInfo):
    """What an optimizer needs from its caller, read from the optimizer itself.

    The class attributes of the optimizer class are the single source: ``requires_closure``,
    ``joint_step``, ``stochastic``, ``needs_ggn`` (absent means False, as for torch's own
    optimizers). An instance may refine its class (``gd`` with ``step_rule="polyak"`` sets
    ``requires_closure``; ``natural-gradient`` with the thermodynamic solver is stochastic), so
    code holding an optimizer asks :func:`optimizer_info` of the instance; the registry entry
    (``trainlab list optimizers``) shows the class defaults.

    Attributes:
        needs_closure: ``step`` needs a closure (:mod:`trainlab.optim.closure`).
        joint_step: one step on the concatenation of all parameters (a param group's own lr
            cannot hold its parameters still).
        stochastic: draws random numbers in ``step`` (from a caller's generator).
        needs_ggn: needs a curvature closure with ``ggn_vp``
            (:func:`trainlab.optim.loss_closure.make_closure`).
    """

    needs_closure: bool = False
    joint_step: bool = False
    stochastic: bool = False
    needs_ggn: bool = False


def optimizer_class(obj: Any) -> type[torch.optim.Optimizer]:
    """The optimizer class a registered object builds: the class itself, or a factory's
    annotated return class."""
    if isinstance(obj, type):
        return obj
    ret = typing.get_type_hints(obj).get("return")
    if not (isinstance(ret, type) and issubclass(ret, torch.optim.Optimizer)):
        raise TrainlabError(f"optimizer factory {getattr(obj, '__name__', obj)!r} must annotate "
                            f"the optimizer class it returns (got {ret!r})")
    return ret


def optimizer_info(obj: Any) -> OptimizerInfo:
    """The :class:`OptimizerInfo` of an optimizer instance, class or registered factory (read
    from its ``requires_closure``, ``joint_step``, ``stochastic``, ``needs_ggn``)."""
    src = obj if isinstance(obj, torch.optim.Optimizer) else optimizer_class(obj)
    return OptimizerInfo(needs_closure=bool(getattr(src, "requires_closure", False)),
                         joint_step=bool(getattr(src, "joint_step", False)),
                         stochastic=bool(getattr(src, "stochastic", False)),
                         needs_ggn=bool(getattr(src, "needs_ggn", False)))


OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry(
    "optimizer", info=OptimizerInfo, derive=lambda obj: asdict(optimizer_info(obj)))


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
