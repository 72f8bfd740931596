r"""Riemannian Adam and AMSGrad on products of spheres and Poincare balls (papers.md row 115)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from trainlab.errors import check_betas, check_range
from trainlab.optim._chunked import can_block
from trainlab.optim._fused_adam import adam_step_
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim._stateful import StatefulOptimizer
from trainlab.optim.manifolds import manifold as get_manifold


def _single_tensor_riemannian_adam(params: list[torch.Tensor], grads: list[torch.Tensor],
                                   exp_avgs: list[torch.Tensor], exp_avg_sqs: list[torch.Tensor],
                                   max_exp_avg_sqs: list[torch.Tensor | None], steps: list[int],
                                   *, manifold: str, lr: float, beta1: float, beta2: float,
                                   eps: float, weight_decay: float, amsgrad: bool,
                                   maximize: bool) -> None:
    """One Riemannian Adam step per tensor, in place on params and state (reference)."""
    man = get_manifold(manifold)
    for x, g, m, v, vmax, t in zip(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
                                   steps):
        if maximize:
            g = torch.neg(g)
        if weight_decay:
            g = torch.add(g, x, alpha=weight_decay)
        rg = man.egrad2rgrad(x, g)
        m.mul_(beta1).add_(rg, alpha=1.0 - beta1)
        v.mul_(beta2).add_(man.component_inner(x, rg), alpha=1.0 - beta2)
        bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t
        if amsgrad:
            torch.maximum(vmax, v, out=vmax)
            v_used = vmax
        else:
            v_used = v
        direction = (m / bc1) / (v_used / bc2).sqrt().add_(eps)
        y = man.retr(x, -lr * direction)
        m.copy_(man.transp(x, y, m))
        x.copy_(y)


class RiemannianAdam(StatefulOptimizer):
    r"""Riemannian Adam / AMSGrad (Becigneul & Ganea, "Riemannian Adaptive Optimization
    Methods", ICLR 2019; papers.md row 115).

    On a product :math:`\mathcal M = \mathcal M_1\times\dots\times\mathcal M_n` (here: the rows
    of a tensor, each a point of the group's ``manifold``), with Riemannian gradient
    :math:`g_t^i`:

    .. math::
        m_t^i = \beta_1\tau^i_{t-1} + (1-\beta_1)g_t^i,\quad
        v_t^i = \beta_2 v_{t-1}^i + (1-\beta_2)\lVert g_t^i\rVert^2_{x^i},\quad
        x_{t+1}^i = R_{x^i}\big(-\eta\,\hat m_t^i/(\sqrt{\hat v_t^i}+\epsilon)\big),\quad
        \tau_t^i = \Gamma_{x_t\to x_{t+1}}(m_t^i)

    so the second moment is one scalar per point (adaptivity across components, as in the
    paper), :math:`R` is the retraction (exponential map by default) and :math:`\Gamma` the
    transport. ``amsgrad=True`` uses :math:`\max_{s\le t}\hat v_s` (RAMSGRAD). Bias
    corrections as Adam (the paper states the uncorrected version). On ``"euclidean"`` it is
    ``torch.optim.Adam``, and there it runs torch's fused CPU Adam kernel when the tensors
    allow it (dense contiguous float32/float64 CPU tensors), matching the reference
    :func:`_single_tensor_riemannian_adam` to rounding.

    Each param group chooses its geometry with the key ``manifold``: ``"euclidean"``
    (default), ``"sphere"``, ``"sphere_retr"`` (projection retraction), ``"poincare"``,
    ``"poincare_retr"`` (first-order retraction), see :mod:`trainlab.optim.manifolds`. Points
    must start on the manifold (rows of unit norm; rows inside the ball).

    Deviations: weight decay (default 0) is added to the Euclidean gradient, as geoopt does.

    State keys: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (AMSGrad only).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False,
                 manifold: str = "euclidean", *, maximize: bool = False):
        owner = "RiemannianAdam"
        check_range("lr", lr, low=0.0, owner=owner)
        check_betas(betas, 2, owner=owner)
        check_range("eps", eps, low=0.0, owner=owner)
        check_range("weight_decay", weight_decay, low=0.0, owner=owner)
        get_manifold(manifold)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      manifold=manifold, maximize=maximize))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if "manifold" in param_group:
            get_manifold(param_group["manifold"])  # unknown names fail here, listing valid ones
        super().add_param_group(param_group)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        man = get_manifold(group["manifold"])
        second = man.component_inner(p.detach(), torch.zeros_like(p))
        state = {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(second)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = torch.zeros_like(second)
        return state

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor], states: list[dict[str, Any]]) -> None:
        b1, b2 = group["betas"]
        if group["manifold"] == "euclidean" and _adam_fast_path(group, params, grads, states):
            return
        _single_tensor_riemannian_adam(
            params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
            [s.get("max_exp_avg_sq") for s in states], [s["step"] for s in states],
            manifold=group["manifold"], lr=group["lr"], beta1=b1, beta2=b2, eps=group["eps"],
            weight_decay=group["weight_decay"], amsgrad=group["amsgrad"],
            maximize=group["maximize"])


def _adam_fast_path(group: dict[str, Any], params: list[torch.Tensor],
                    grads: list[torch.Tensor], states: list[dict[str, Any]]) -> bool:
    """On Euclidean parameters Riemannian Adam is Adam (L2 weight decay, optional AMSGrad):
    run torch's fused CPU Adam kernel when the tensors allow it (dense contiguous
    float32/float64 CPU tensors at one step count). Returns whether it ran."""
    steps = [s["step"] for s in states]
    lists = [params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]]
    if group["amsgrad"]:
        lists.append([s["max_exp_avg_sq"] for s in states])
    if any(t != steps[0] for t in steps) or not can_block(*lists):
        return False
    b1, b2 = group["betas"]
    adam_step_(*lists[:4], lists[4] if group["amsgrad"] else [], float(steps[0]),
               amsgrad=group["amsgrad"], lr=group["lr"], beta1=b1, beta2=b2,
               weight_decay=group["weight_decay"], eps=group["eps"],
               maximize=group["maximize"])
    return True


OPTIMIZERS.register("riemannian-adam", RiemannianAdam, papers=(115,),
                    summary="Riemannian Adam/AMSGrad on sphere and Poincare-ball param groups")
