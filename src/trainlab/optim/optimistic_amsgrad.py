r"""Optimistic-AMSGrad: AMSGrad plus an optimistic step along a predicted gradient
(papers.md row 50)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch

from trainlab.errors import check_betas, check_choice, check_range
from trainlab.optim._compiled import CompiledUpdate, can_fuse, lerp_
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim._stateful import StatefulOptimizer


def _single_tensor_optimistic_amsgrad(params: list[torch.Tensor], grads: list[torch.Tensor],
                                      exp_avgs: list[torch.Tensor],
                                      exp_avg_sqs: list[torch.Tensor],
                                      max_exp_avg_sqs: list[torch.Tensor],
                                      halves: list[torch.Tensor], *, lr: float, beta1: float,
                                      beta2: float, eps: float, predictor: str,
                                      maximize: bool) -> None:
    """One Optimistic-AMSGrad step per tensor, in place (reference implementation)."""
    for p, g, m, v, vmax, w_half in zip(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
                                       halves):
        if maximize:
            g = torch.neg(g)
        m_prev = m.clone()
        m.lerp_(g, 1.0 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
        torch.maximum(vmax, v, out=vmax)
        den = vmax.sqrt().add_(eps)
        w_half.addcdiv_(m, den, value=-lr)  # w_{t+1/2} = w_{t-1/2} - lr m_t / sqrt(v^_t)
        guess = g if predictor == "last" else torch.zeros_like(g)  # m_{t+1}, guess of g_{t+1}
        h = m_prev.mul_(beta1).add_(guess, alpha=1.0 - beta1)  # h_{t+1}
        p.copy_(torch.addcdiv(w_half, h, den, value=-lr))  # w_{t+1} = w_{t+1/2} - lr h/sqrt(v)


def _optimistic_amsgrad_kernel(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor,
                               v: torch.Tensor, vmax: torch.Tensor, w_half: torch.Tensor,
                               s: torch.Tensor) -> None:
    """:func:`_single_tensor_optimistic_amsgrad` for one tensor with the step's scalars in
    ``s`` (sign, 1-b1, b2, 1-b2, eps, lr, b1, weight of the guess: 1-b1 for ``"last"``, 0
    for ``"zero"``): the body compiled by the ``fused=True`` path."""
    g = g * s[0]
    h = m * s[6] + g * s[7]  # from the previous first moment
    lerp_(m, g, s[1])
    v.mul_(s[2]).add_(g * g * s[3])
    vmax.copy_(torch.maximum(vmax, v))
    den = vmax.sqrt() + s[4]
    w_half.sub_(m / den * s[5])
    p.copy_(w_half - h / den * s[5])


_FUSED = CompiledUpdate(_optimistic_amsgrad_kernel, "OptimisticAMSGrad")


class OptimisticAMSGrad(StatefulOptimizer):
    r"""Optimistic-AMSGrad (Wang, Li, Karimi & Li, "An Optimistic Acceleration of AMSGrad for
    Nonconvex Optimization", ACML 2021 / arXiv 2019; papers.md row 50), Algorithm 2:

    .. math::
        \theta_t &= \beta_1\theta_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad \hat v_t = \max(\hat v_{t-1}, v_t) \\
        w_{t+\frac12} &= w_{t-\frac12} - \eta\,\theta_t/\sqrt{\hat v_t},\qquad
        w_{t+1} = w_{t+\frac12} - \eta\,h_{t+1}/\sqrt{\hat v_t},\quad
        h_{t+1} = \beta_1\theta_{t-1} + (1-\beta_1) m_{t+1}

    where :math:`m_{t+1}` is a guess of the next gradient and :math:`w_{\frac12} = w_1`. The
    parameters hold :math:`w_t` (where gradients are taken); the state holds the half-step
    iterate. As in the paper there is no bias correction.

    Deviations: the paper predicts :math:`m_{t+1}` by regularized minimal polynomial
    extrapolation over the last r gradients; here ``predictor="last"`` uses :math:`m_{t+1} =
    g_t` (the simplest optimistic guess) and ``"zero"`` uses 0. ``eps`` (default 1e-8) is added
    to :math:`\sqrt{\hat v_t}` for numerical safety.

    ``fused=True`` runs the update as one kernel per tensor compiled by ``torch.compile``
    (see :mod:`trainlab.optim._compiled`; a one-time compilation); the default runs the
    reference.

    State keys: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``, ``half``.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 predictor: Literal["last", "zero"] = "last", *, maximize: bool = False,
                 fused: bool = False):
        owner = "OptimisticAMSGrad"
        check_range("lr", lr, low=0.0, owner=owner)
        check_betas(betas, 2, owner=owner)
        check_range("eps", eps, low=0.0, owner=owner)
        check_choice("predictor", predictor, ("last", "zero"), owner="OptimisticAMSGrad")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, predictor=predictor,
                                      maximize=maximize, fused=bool(fused)))

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p),
                "max_exp_avg_sq": torch.zeros_like(p), "half": p.detach().clone()}

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor], states: list[dict[str, Any]]) -> None:
        b1, b2 = group["betas"]
        lists = (params, grads, [s["exp_avg"] for s in states],
                 [s["exp_avg_sq"] for s in states], [s["max_exp_avg_sq"] for s in states],
                 [s["half"] for s in states])
        if group.get("fused", False) and can_fuse(*lists):
            guess = 1.0 - b1 if group["predictor"] == "last" else 0.0
            _FUSED(lists, (-1.0 if group["maximize"] else 1.0, 1.0 - b1, b2, 1.0 - b2,
                           group["eps"], group["lr"], b1, guess))
            return
        _single_tensor_optimistic_amsgrad(
            params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
            [s["max_exp_avg_sq"] for s in states], [s["half"] for s in states], lr=group["lr"],
            beta1=b1, beta2=b2, eps=group["eps"], predictor=group["predictor"],
            maximize=group["maximize"])


OPTIMIZERS.register("optimistic-amsgrad", OptimisticAMSGrad, papers=(50,),
                    summary="Optimistic-AMSGrad: AMSGrad half-step plus a predicted-gradient step")
