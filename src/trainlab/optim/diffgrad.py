r"""diffGrad: Adam whose step is damped by the change of the gradient (papers.md row 89)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from trainlab.errors import check_betas, check_range
from trainlab.optim._chunked import BLOCK_ELEMENTS, blocks, can_block, scratch_buffer, scratch_views
from trainlab.optim._compiled import CompiledUpdate, can_fuse, lerp_
from trainlab.optim._fused_adam import adam_step_
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim._stateful import StatefulOptimizer


def _single_tensor_diffgrad(params: list[torch.Tensor], grads: list[torch.Tensor],
                            exp_avgs: list[torch.Tensor], exp_avg_sqs: list[torch.Tensor],
                            prev_grads: list[torch.Tensor], steps: list[int], *, lr: float,
                            beta1: float, beta2: float, eps: float, weight_decay: float,
                            maximize: bool) -> None:
    """One diffGrad step per tensor, in place on params and state (reference implementation)."""
    for p, g, m, v, g_prev, t in zip(params, grads, exp_avgs, exp_avg_sqs, prev_grads, steps):
        if maximize:
            g = torch.neg(g)
        if weight_decay:
            g = torch.add(g, p, alpha=weight_decay)
        m.lerp_(g, 1.0 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
        bc1 = 1.0 - beta1**t
        bc2_sqrt = math.sqrt(1.0 - beta2**t)
        xi = torch.sub(g_prev, g).abs_().sigmoid_()  # friction coefficient, AbsSig(g_{t-1} - g_t)
        g_prev.copy_(g)
        den = v.sqrt().add_(eps * bc2_sqrt)
        p.addcdiv_(xi.mul_(m), den, value=-lr * bc2_sqrt / bc1)


def _blocked_diffgrad(params: list[torch.Tensor], grads: list[torch.Tensor],
                      exp_avgs: list[torch.Tensor], exp_avg_sqs: list[torch.Tensor],
                      prev_grads: list[torch.Tensor], step: int, *, lr: float, beta1: float,
                      beta2: float, eps: float, weight_decay: float, maximize: bool,
                      block_elements: int = BLOCK_ELEMENTS) -> None:
    r"""The diffGrad step of :func:`_single_tensor_diffgrad` (all tensors at the same
    ``step``) on cache-sized blocks, with torch's fused Adam kernel doing the moments: it runs
    on a zeroed scratch "parameter" :math:`u`, which so receives Adam's step
    :math:`u = -\eta\hat m / (\sqrt{\hat v} + \epsilon)`, then :math:`\theta \mathrel{+}=
    \xi u`. The friction :math:`\xi` is built in the ``previous_grad`` buffer itself (it is
    overwritten by the new gradient at the end of the block anyway)."""
    u_buf = scratch_buffer(params, block_elements)
    g_buf = scratch_buffer(params, block_elements) if (maximize or weight_decay) else None
    for block in blocks((params, grads, exp_avgs, exp_avg_sqs, prev_grads), block_elements):
        p, g, m, v, g_prev = block.views
        if g_buf is not None:  # the gradient actually used, in scratch (p.grad is read-only)
            g_new = scratch_views(g_buf, g)
            torch._foreach_copy_(g_new, g)
            if maximize:
                torch._foreach_neg_(g_new)
            if weight_decay:
                torch._foreach_add_(g_new, p, alpha=weight_decay)
            g = g_new
        torch._foreach_sub_(g_prev, g)  # g_prev becomes xi = sigmoid(|g_prev - g|), then g
        torch._foreach_abs_(g_prev)
        torch._foreach_sigmoid_(g_prev)
        u = scratch_views(u_buf, g)
        torch._foreach_zero_(u)
        adam_step_(u, g, m, v, [], step, lr=lr, beta1=beta1, beta2=beta2, weight_decay=0.0,
                   eps=eps, maximize=False)
        torch._foreach_addcmul_(p, u, g_prev)
        torch._foreach_copy_(g_prev, g)


def _diffgrad_kernel(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor,
                     g_prev: torch.Tensor, s: torch.Tensor) -> None:
    """:func:`_single_tensor_diffgrad` for one tensor with the step's scalars in ``s``
    (sign, weight decay, 1-b1, b2, 1-b2, eps sqrt(bc2), lr sqrt(bc2)/bc1): the body compiled
    by the ``fused=True`` path."""
    g = g * s[0] + p * s[1]
    lerp_(m, g, s[2])
    v.mul_(s[3]).add_(g * g * s[4])
    xi = torch.sigmoid((g_prev - g).abs())
    g_prev.copy_(g)
    p.sub_(xi * m / (v.sqrt() + s[5]) * s[6])


_FUSED = CompiledUpdate(_diffgrad_kernel, "DiffGrad")


def diffgrad(params: list[torch.Tensor], grads: list[torch.Tensor],
             exp_avgs: list[torch.Tensor], exp_avg_sqs: list[torch.Tensor],
             prev_grads: list[torch.Tensor], steps: list[int], *, fused: bool = False,
             **hyper: Any) -> None:
    """One diffGrad step: with ``fused``, the compiled kernel; else the blocked path when it
    applies (dense contiguous float32/float64 CPU tensors, one step count); else the
    reference."""
    lists = (params, grads, exp_avgs, exp_avg_sqs, prev_grads)
    same_step = bool(steps) and all(s == steps[0] for s in steps)
    if fused and same_step and can_fuse(*lists):
        t = steps[0]
        bc1, bc2_sqrt = 1.0 - hyper["beta1"]**t, math.sqrt(1.0 - hyper["beta2"]**t)
        _FUSED(lists, (-1.0 if hyper["maximize"] else 1.0, hyper["weight_decay"],
                       1.0 - hyper["beta1"], hyper["beta2"], 1.0 - hyper["beta2"],
                       hyper["eps"] * bc2_sqrt, hyper["lr"] * bc2_sqrt / bc1))
    elif same_step and can_block(*lists):
        _blocked_diffgrad(*lists, steps[0], **hyper)
    else:
        _single_tensor_diffgrad(*lists, steps, **hyper)


class DiffGrad(StatefulOptimizer):
    r"""diffGrad (Dubey et al., "diffGrad: An Optimization Method for Convolutional Neural
    Networks", IEEE TNNLS 2019; papers.md row 89).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2)g_t^2,
        \quad \xi_t = \sigma(|g_{t-1} - g_t|) \\
        \theta_{t+1} = \theta_t - \eta\,\xi_t\,\hat m_t / (\sqrt{\hat v_t} + \epsilon)

    with :math:`\sigma` the logistic sigmoid, :math:`g_0 = 0` and the Adam bias corrections.
    Paper defaults :math:`\eta=10^{-3}, \beta=(0.9, 0.999), \epsilon=10^{-8}`.
    ``weight_decay`` is an L2 term added to the gradient (Adam-style; 0 by default, the paper
    has none).

    State keys: ``step``, ``exp_avg``, ``exp_avg_sq``, ``previous_grad``.

    Fast path: for dense contiguous float32/float64 CPU tensors at one step count, the update
    runs on 64k-element blocks (cache-resident, so each buffer crosses memory once): torch's
    fused Adam kernel writes Adam's step into a zeroed scratch buffer, which is added to the
    weights times the friction (built in place in ``previous_grad``);
    :func:`_single_tensor_diffgrad` is the reference it matches (float64 test to 1e-12).
    With ``fused=True`` the update is instead one kernel per tensor compiled by
    ``torch.compile`` (see :mod:`trainlab.optim._compiled`; a one-time compilation).

    Deviations from the paper: none known in the update, checked against the authors'
    released code (shivram1987/diffGrad ``diffGrad.py``: Adam moments, friction
    ``1/(1+exp(-|g_{t-1} - g_t|))`` with a zero previous gradient at the first step, bias
    corrections, defaults lr 1e-3, betas (0.9, 0.999), eps 1e-8, L2 weight decay added to
    the gradient before the friction), except that eps is added to the bias-corrected root
    here (as in the update above) and to the uncorrected one there, which changes eps by the
    factor sqrt(1 - beta2^t); that code's first version also overwrote the stored gradient
    (its own note), which is not copied. The paper's text was not read for this paragraph.
    Additions: ``maximize`` and ``fused``.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, maximize: bool = False, fused: bool = False):
        owner = "DiffGrad"
        check_range("lr", lr, low=0.0, owner=owner)
        check_betas(betas, 2, owner=owner)
        check_range("eps", eps, low=0.0, owner=owner)
        check_range("weight_decay", weight_decay, low=0.0, owner=owner)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, maximize=maximize,
                                      fused=bool(fused)))

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p),
                "previous_grad": torch.zeros_like(p)}

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor], states: list[dict[str, Any]]) -> None:
        b1, b2 = group["betas"]
        diffgrad(
            params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
            [s["previous_grad"] for s in states], [s["step"] for s in states], lr=group["lr"],
            beta1=b1, beta2=b2, eps=group["eps"], weight_decay=group["weight_decay"],
            maximize=group["maximize"], fused=group.get("fused", False))


OPTIMIZERS.register("diffgrad", DiffGrad, papers=(89,),
                    summary="diffGrad: Adam step damped by sigmoid(|g_prev - g|)")
