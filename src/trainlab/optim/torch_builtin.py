"""torch's own SGD (momentum, Nesterov), Adam and AdamW, registered under trainlab names.

On CPU, the fused AdamW/Adam kernels are the fastest of torch's three code paths
(``benchmarks/trainer_overhead.py`` measures it); ``fused=None`` picks fused whenever every
parameter is a floating-point tensor on CPU or CUDA and the running torch has the kernels for
those devices (the CPU ones came with torch 2.4; older releases get torch's foreach path, with
one warning on the ``trainlab`` logger).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch

from trainlab.log import warn_once
from trainlab.optim._registry import OPTIMIZERS


@functools.cache
def _fuses_on(device_type: str) -> bool:
    """Whether this torch builds ``Adam(fused=True)`` for tensors on ``device_type`` (tried
    once on a one-element tensor there; torch < 2.4 refuses the CPU)."""
    try:
        torch.optim.Adam([torch.zeros(1, device=device_type, requires_grad=True)], fused=True)
    except RuntimeError:
        return False
    return True


def _can_fuse(params: list[Any]) -> bool:
    tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    types = {t.device.type for t in tensors}
    if not all(t.is_floating_point() for t in tensors) or not types <= {"cpu", "cuda"}:
        return False
    missing = ", ".join(sorted(d for d in types if not _fuses_on(d)))
    if missing:
        warn_once(f"torch-fused-adam-{missing}", "torch %s has no fused Adam/AdamW kernel for "
                  "%s: adam and adamw take torch's foreach path (slower, same update)",
                  torch.__version__, missing)
    return not missing


def sgd(params: Iterable[Any], lr: float = 1e-2, momentum: float = 0.0, dampening: float = 0.0,
        weight_decay: float = 0.0, nesterov: bool = False) -> torch.optim.SGD:
    r"""Plain SGD, heavy-ball momentum or Nesterov momentum (torch.optim.SGD).

    Deviations from the paper: this is ``torch.optim.SGD``; its momentum keeps a buffer
    :math:`b \leftarrow \mu b + g` and steps :math:`-\eta b` (Nesterov: :math:`-\eta (g
    + \mu b)`), which equals the papers' heavy-ball and Nesterov recurrences at a
    constant learning rate but not when the rate changes (the rate then scales past
    gradients too; :class:`trainlab.optim.gd.GradientDescent` keeps the papers' form).
    The default ``lr = 1e-2`` is this library's. The papers' text was not re-read for
    this paragraph.
    """
    return torch.optim.SGD(params, lr=lr, momentum=momentum, dampening=dampening,
                           weight_decay=weight_decay, nesterov=nesterov)


def adam(params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
         eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
         fused: bool | None = None) -> torch.optim.Adam:
    """Adam (Kingma & Ba, 2015), torch.optim.Adam."""
    params = list(params)
    fused = _can_fuse(params) if fused is None else fused
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps,
                            weight_decay=weight_decay, amsgrad=amsgrad, fused=fused or None)


def adamw(params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
          fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW, decoupled weight decay (Loshchilov & Hutter, 2019), torch.optim.AdamW."""
    params = list(params)
    fused = _can_fuse(params) if fused is None else fused
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), eps=eps,
                             weight_decay=weight_decay, amsgrad=amsgrad, fused=fused or None)


OPTIMIZERS.register("sgd", sgd, papers=(38, 62),
                    summary="SGD with optional heavy-ball or Nesterov momentum (torch)")
OPTIMIZERS.register("adam", adam, summary="Adam (torch, fused on CPU)")
OPTIMIZERS.register("adamw", adamw, summary="AdamW, decoupled weight decay (torch, fused on CPU)")
