"""Model-level application of initialization schemes, and the init registry."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from trainlab.registry import EntryInfo, Registry


@dataclass(frozen=True)
class InitInfo(EntryInfo):
    """Flags of an init entry.

    Attributes:
        needs_batch: data-dependent: :func:`apply` needs ``batch=``.
        batch_kind: what that batch is: ``"inputs"`` (a tensor) or ``"pair"``
            (``(inputs, targets)``, e.g. ``decoupled``).
    """

    needs_batch: bool = False
    batch_kind: Literal["inputs", "pair"] = "inputs"


INITS: Registry[Callable[..., InitReport]] = Registry("init", info=InitInfo)

Selector = Callable[[str, nn.Module], bool]


@dataclass(frozen=True)
class LayerInit:
    """What a scheme did to one layer (data-dependent schemes fill ``scale``/``iterations``)."""

    name: str
    scale: float = 1.0
    iterations: int = 0
    converged: bool = True
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class InitReport:
    """The result of initializing a model: the scheme and one record per layer touched."""

    scheme: str
    layers: tuple[LayerInit, ...]

    @property
    def converged(self) -> bool:
        return all(layer.converged for layer in self.layers)


def weight_layers(name: str, module: nn.Module) -> bool:
    """Default selector: fully connected and convolution layers (anything with a >=2-D weight
    that is not a normalization or embedding layer)."""
    if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd, nn.Bilinear)):
        return True
    w = getattr(module, "weight", None)
    norm = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.Embedding)
    return isinstance(w, torch.Tensor) and w.dim() >= 2 and not isinstance(module, norm)


def selected(model: nn.Module, select: Selector | None = None) -> list[tuple[str, nn.Module]]:
    sel = select or weight_layers
    return [(n, m) for n, m in model.named_modules() if sel(n, m)]


def tensor_scheme(
    fill_: Callable[..., torch.Tensor], bias: str = "zeros"
) -> Callable[..., InitReport]:
    """Lift a tensor-level ``fill_(tensor, **hyper, generator=g)`` to a model-level scheme.

    Weights of the selected layers are filled with ``fill_``; their biases are set to zero
    (``bias="zeros"``) or left as they are (``bias="keep"``).
    """

    def init_model(
        model: nn.Module,
        *,
        generator: torch.Generator | None = None,
        select: Selector | None = None,
        batch: Any = None,
        scheme: str = "",
        **hyper: Any,
    ) -> InitReport:
        del batch  # data-independent
        layers = []
        with torch.no_grad():
            for name, module in selected(model, select):
                fill_(module.weight, generator=generator, **hyper)
                b = getattr(module, "bias", None)
                if bias == "zeros" and isinstance(b, torch.Tensor):
                    b.zero_()
                layers.append(LayerInit(name))
        return InitReport(scheme, tuple(layers))

    init_model.__doc__ = fill_.__doc__
    init_model.__wrapped__ = fill_  # type: ignore[attr-defined]
    return init_model


def apply(
    model: nn.Module,
    scheme: str,
    *,
    batch: Any = None,
    generator: torch.Generator | None = None,
    select: Selector | None = None,
    **hyper: Any,
) -> InitReport:
    """Initialize ``model`` in place with the registered ``scheme``.

    Args:
        model: any ``nn.Module``; the layers chosen by ``select`` (default
            :func:`weight_layers`) are initialized.
        scheme: a name from ``trainlab list inits``.
        batch: input batch, for data-dependent schemes (e.g. ``"lsuv"``).
        generator: the source of randomness (the global RNG is never used).
        **hyper: the scheme's hyper-parameters (defaults are the paper's).

    Returns:
        An :class:`InitReport` describing what was done to each layer.
    """
    entry = INITS.entry(scheme)
    if entry.info.needs_batch and batch is None:
        from trainlab.errors import ConfigError

        raise ConfigError(f"init {scheme!r} is data-dependent and needs batch=<input tensor>")
    return entry.obj(model, generator=generator, select=select, batch=batch, scheme=scheme, **hyper)


def fan_in_out(tensor: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) with torch's convention: weight is (out, in, *kernel)."""
    if tensor.dim() < 2:
        raise ValueError("fan in/out need a tensor with at least 2 dims, got shape "
                         f"{tuple(tensor.shape)}")
    receptive = math.prod(tensor.shape[2:]) if tensor.dim() > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive
