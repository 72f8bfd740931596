r"""Hypergradients by the implicit function theorem with a Neumann-series inverse Hessian.

At a minimizer :math:`w^*(\lambda)` of the training loss :math:`L_T(w, \lambda)`, the
validation loss :math:`L_V(w, \lambda)` has total derivative

.. math::
    \frac{d L_V}{d\lambda} = \frac{\partial L_V}{\partial \lambda}
    - \frac{\partial L_V}{\partial w}
      \Big[\frac{\partial^2 L_T}{\partial w\, \partial w^\top}\Big]^{-1}
      \frac{\partial^2 L_T}{\partial w\, \partial \lambda^\top}.

The inverse-Hessian-vector product is the truncated Neumann series
:math:`H^{-1} v \approx \alpha \sum_{j=0}^{i} (I - \alpha H)^j v` (converges for
:math:`0 < \alpha < 2/\lambda_{\max}(H)` when :math:`H` is positive-definite), one
Hessian-vector product per term; the mixed term is one vector-Jacobian product.

References:
    Lorraine, Vicol, Duvenaud. "Optimizing Millions of Hyperparameters by Implicit
    Differentiation", AISTATS 2020 (papers.md row 54), Algorithms 2-3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import grad, jvp, vjp

from trainlab.errors import check_range

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Hypergradient:
    """Result of :func:`ift_hypergradient`.

    Attributes:
        hypergrad: ``d L_V / d lambda`` (shape of ``lam``).
        direct: the direct term ``dL_V/dlambda`` alone.
        inverse_hvp: the Neumann approximation of ``H^{-1} dL_V/dw``.
    """

    hypergrad: torch.Tensor
    direct: torch.Tensor
    inverse_hvp: torch.Tensor


def ift_hypergradient(train_loss: Loss, val_loss: Loss, w: torch.Tensor, lam: torch.Tensor, *,
                      neumann_steps: int = 20, alpha: float = 0.1) -> Hypergradient:
    """The IFT hypergradient of ``val_loss(w, lam)`` at (approximately) optimal ``w``.

    Deviations from the paper: the hypergradient is computed at the given ``w`` (the paper
    alternates a few training steps with one hypergradient step; that outer loop is the caller's);
    ``neumann_steps = 20`` and ``alpha = 0.1`` are this function's defaults (the Neumann step the
    paper uses was not re-read for this paragraph); the losses take flat tensors.

    Args:
        train_loss, val_loss: scalar functions ``(w, lam) -> loss`` of flat tensors.
        w: the trained weights (flat). lam: the hyperparameters (flat).
        neumann_steps: number of Neumann terms ``i`` (the paper uses a handful to 20).
        alpha: Neumann step, ``0 < alpha < 2 / lambda_max(H)``.
    """
    check_range("neumann_steps", neumann_steps, low=0, owner="ift_hypergradient")
    check_range("alpha", alpha, low=0.0, low_open=True, owner="ift_hypergradient")
    w, lam = w.detach(), lam.detach()
    dv_dw, dv_dlam = grad(val_loss, argnums=(0, 1))(w, lam)
    dt_dw = grad(train_loss, argnums=0)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        return jvp(lambda q: dt_dw(q, lam), (w,), (v,))[1]

    v, p = dv_dw.clone(), dv_dw.clone()
    for _ in range(neumann_steps):
        v = v - alpha * hvp(v)
        p = p + v
    p = alpha * p
    _, pullback = vjp(lambda lm: dt_dw(w, lm), lam)
    mixed = pullback(p)[0]
    return Hypergradient(dv_dlam - mixed, dv_dlam, p)
