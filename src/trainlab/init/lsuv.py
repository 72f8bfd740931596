"""Layer-sequential unit-variance initialization (Mishkin & Matas, 2016; papers.md row 42)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from trainlab.errors import check_range
from trainlab.init._apply import INITS, InitReport, LayerInit, Selector, selected
from trainlab.init.orthogonal import orthogonal_


class _Stop(Exception):
    """Raised by the hook once the layer's output is captured: the rest of the forward pass
    is not needed."""


def _capture_and_stop(captured: dict[str, torch.Tensor], name: str, out: torch.Tensor) -> None:
    captured[name] = out
    raise _Stop


def _output_variance(model: nn.Module, inputs: tuple, captured: dict[str, torch.Tensor],
                     name: str) -> float:
    with contextlib.suppress(_Stop):
        model(*inputs)
    return captured[name].double().var().item()


def lsuv(
    model: nn.Module,
    *,
    batch: Any,
    generator: torch.Generator | None = None,
    select: Selector | None = None,
    tol_var: float = 0.1,
    max_iter: int = 10,
    scheme: str = "lsuv",
) -> InitReport:
    r"""LSUV: orthonormal pre-init, then rescale each layer until its output variance is 1.

    Algorithm 1 of "All you need is a good init" (Mishkin & Matas, ICLR 2016, papers.md
    row 42): every selected layer gets a random orthonormal weight and a zero bias; then,
    layer by layer in module order, the batch is forwarded, the variance of the layer's
    output is measured over the whole output tensor, and
    :math:`W_L \leftarrow W_L / \sqrt{\mathrm{Var}(B_L)}` is repeated while
    :math:`|\mathrm{Var}(B_L) - 1| \ge \mathrm{tol\_var}` and fewer than ``max_iter``
    attempts were made (paper defaults: tol_var 0.1, T_max 10).

    The model's train/eval mode is left as the caller set it, and no gradient is recorded.

    Deviations: none from the paper's Algorithm 1. The author's code also shifts the bias to
    zero the output mean; the paper does not, and neither do we.

    Args:
        model: the model; its selected layers are re-initialized in place.
        batch: an input batch, passed as ``model(batch)`` (a tuple is unpacked).
        generator: randomness for the orthonormal pre-init.
        tol_var: tolerance on |Var - 1|, > 0.
        max_iter: maximum number of rescaling attempts per layer, >= 1.

    Returns:
        An :class:`InitReport` with, per layer, the total scale applied, the attempts used
        and whether the tolerance was reached.
    """
    check_range("tol_var", tol_var, low=0.0, low_open=True, owner="lsuv")
    check_range("max_iter", max_iter, low=1, owner="lsuv")
    layers = selected(model, select)
    captured: dict[str, torch.Tensor] = {}
    records = []
    inputs = batch if isinstance(batch, tuple) else (batch,)
    with torch.no_grad():
        for _, module in layers:
            orthogonal_(module.weight, generator=generator)
            if isinstance(getattr(module, "bias", None), torch.Tensor):
                module.bias.zero_()
        for name, module in layers:
            handle = module.register_forward_hook(
                lambda _m, _i, out, name=name: _capture_and_stop(captured, name, out)
            )
            try:
                scale, attempts, var = 1.0, 0, float("nan")
                while attempts < max_iter:
                    var = _output_variance(model, inputs, captured, name)
                    if abs(var - 1.0) < tol_var or var == 0.0:
                        break
                    factor = var ** -0.5
                    module.weight.mul_(factor)
                    scale *= factor
                    attempts += 1
                else:
                    var = _output_variance(model, inputs, captured, name)
            finally:
                handle.remove()
            records.append(LayerInit(name, scale, attempts, abs(var - 1.0) < tol_var,
                                     {"variance": var}))
    return InitReport(scheme, tuple(records))


INITS.register("lsuv", lsuv, papers=(42,), needs_batch=True,
               summary="orthonormal pre-init, then layer output variances scaled to 1 on a batch")
