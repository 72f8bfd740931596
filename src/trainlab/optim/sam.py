r"""Sharpness-Aware Minimization (SAM) and its adaptive variant (ASAM).

SAM minimizes :math:`\max_{\|\epsilon\| \le \rho} L(w + \epsilon)`. With the first-order
worst case :math:`\hat\epsilon = \rho\, g / \|g\|` it hands the base optimizer

.. math::  \tilde g = \nabla L(w)\big|_{w + \hat\epsilon},

dropping the second-order term of :math:`d\hat\epsilon/dw` as the paper does. ASAM
(``adaptive=True``) rescales by :math:`T_w = |w|`:
:math:`\hat\epsilon = \rho\, T_w^2 g / \|T_w g\|`.

Two closure calls per step (see :mod:`trainlab.optim.closure`).

References:
    Foret, Kleiner, Mobahi, Neyshabur. "Sharpness-Aware Minimization for Efficiently
    Improving Generalization", ICLR 2021 (papers.md row 63, with GAM). Defaults: rho=0.05,
    base SGD. Kwon et al. "ASAM", ICML 2021, for ``adaptive=True`` (the paper's
    ``eta`` offset for biases is not applied).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from trainlab.errors import check_range
from trainlab.optim._outer import OuterOptimizer, add_, global_norm
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.loss_closure import evaluate


def ascent_direction(params: list[torch.Tensor], grads: list[torch.Tensor], rho: float,
                     adaptive: bool = False, eps: float = 1e-12) -> list[torch.Tensor]:
    """SAM's first-order worst-case perturbation ``rho * g / ||g||`` (or ASAM's)."""
    if adaptive:
        scaled = [g * p.abs() for p, g in zip(params, grads)]
        norm = global_norm(scaled)
        return [rho * p.abs() * s / (norm + eps) for p, s in zip(params, scaled)]
    norm = global_norm(grads)
    return [rho * g / (norm + eps) for g in grads]


def gradient_at(closure: Callable[[], torch.Tensor], params: list[torch.Tensor],
                shift: list[torch.Tensor]) -> list[torch.Tensor]:
    """The closure's gradient at ``params + shift``; parameters are restored bit-exactly."""
    saved = [p.detach().clone() for p in params]
    add_(params, shift)
    try:
        _, g = evaluate(closure, params)
    finally:
        with torch.no_grad():
            for p, w in zip(params, saved):
                p.copy_(w)
    return g


class SAM(OuterOptimizer):
    """SAM / ASAM over a base optimizer (any registered name, default ``"sgd"``).

    Args:
        params: parameters or param groups.
        lr: learning rate of the base optimizer.
        rho: neighbourhood radius, > 0 (paper default 0.05; ASAM uses ~0.5-2).
        adaptive: ASAM's scale-invariant neighbourhood.
        base: registered base optimizer name.
        **base_hyper: the base optimizer's hyper-parameters (e.g. ``momentum=0.9``).
    """

    joint_hypers = ("rho", "adaptive")

    def __init__(self, params: Iterable[Any], lr: float = 0.1, rho: float = 0.05,
                 adaptive: bool = False, base: str = "sgd", **base_hyper: Any):
        check_range("rho", rho, low=0.0, low_open=True, owner="SAM")
        check_range("lr", lr, low=0.0, owner="SAM")
        super().__init__(params, lr, {"rho": rho, "adaptive": adaptive}, base, base_hyper)

    def direction(self, closure, params, loss, grads):
        group = self.param_groups[0]
        shift = ascent_direction(params, grads, group["rho"], group["adaptive"])
        return gradient_at(closure, params, shift)


def sam(params: Iterable[Any], lr: float = 0.1, rho: float = 0.05, adaptive: bool = False,
        base: str = "sgd", **base_hyper: Any) -> SAM:
    """SAM (or ASAM with ``adaptive=True``) over a registered base optimizer.

    Deviations from the paper: the perturbation uses the gradient of the whole batch the
    closure computes (the paper's m-sharpness, one perturbation per sub-batch of m
    examples, is not implemented); the base optimizer defaults to plain SGD at lr 0.1
    without momentum (this library's default, not the paper's training setups, which
    were not re-read for this paragraph); ASAM's ``eta`` offset is not applied (see the
    module docstring).
    """
    return SAM(params, lr=lr, rho=rho, adaptive=adaptive, base=base, **base_hyper)


OPTIMIZERS.register("sam", sam, papers=(63,),
                    summary="Sharpness-Aware Minimization (ASAM with adaptive=True) over a base")
