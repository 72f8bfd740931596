r"""Gravity: a kinematics-inspired first-order method (papers.md row 82)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from trainlab.errors import check_range
from trainlab.optim._chunked import BLOCK_ELEMENTS, blocks, can_block, scratch_buffer, scratch_views
from trainlab.optim._compiled import CompiledUpdate, can_fuse, lerp_
from trainlab.optim._generator import DrawsRandom, optimizer_generator
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim._stateful import StatefulOptimizer


def _single_tensor_gravity(params: list[torch.Tensor], grads: list[torch.Tensor],
                           velocities: list[torch.Tensor], steps: list[int], *, lr: float,
                           beta: float, maximize: bool) -> None:
    """One Gravity step per tensor, in place on params and velocity (reference)."""
    for p, g, v, t in zip(params, grads, velocities, steps):
        if maximize:
            g = torch.neg(g)
        k = t - 1  # the authors' code counts iterations from 0: beta_hat starts at 1/2
        beta_t = (beta * k + 1.0) / (k + 2.0)
        gmax = torch.linalg.vector_norm(g, ord=float("inf"))
        # zeta = g / (1 + (g / M)^2) with M = 1 / max|g|, i.e. (g * max|g|)^2
        zeta = torch.mul(g, gmax).square_().add_(1.0)
        zeta = torch.div(g, zeta, out=zeta)
        v.lerp_(zeta, 1.0 - beta_t)
        p.add_(v, alpha=-lr)


def _blocked_gravity(params: list[torch.Tensor], grads: list[torch.Tensor],
                     velocities: list[torch.Tensor], step: int, *, lr: float, beta: float,
                     maximize: bool, block_elements: int = BLOCK_ELEMENTS) -> None:
    r"""The Gravity step of :func:`_single_tensor_gravity` (all tensors at the same ``step``)
    on cache-sized blocks: every :math:`c = (\max|g|)^2` from ``aminmax`` (8x faster than an
    inf-norm on CPU), then per block :math:`s = 1 + c g^2` (a copy of ones and one
    ``addcmul``), :math:`v \leftarrow \hat\beta v + (1-\hat\beta) g / s` (one ``addcdiv``,
    no separate division) and :math:`\theta \mathrel{-}= l v`."""
    k = step - 1
    beta_t = (beta * k + 1.0) / (k + 2.0)
    sign = -1.0 if maximize else 1.0
    lo, hi = zip(*(torch.aminmax(g) for g in grads))
    c = torch.maximum(torch.stack(lo).neg(), torch.stack(hi)).square().tolist()
    buffer = scratch_buffer(params, block_elements)
    ones = torch.ones_like(buffer)
    for block in blocks((params, grads, velocities), block_elements):
        p, g, v = block.views
        s = scratch_views(buffer, g)
        torch._foreach_copy_(s, scratch_views(ones, g))
        torch._foreach_addcmul_(s, g, g, [c[i] for i in block.index])
        torch._foreach_mul_(v, beta_t)
        torch._foreach_addcdiv_(v, g, s, value=sign * (1.0 - beta_t))
        torch._foreach_add_(p, v, alpha=-lr)


def _gravity_kernel(p: torch.Tensor, g: torch.Tensor, v: torch.Tensor, s: torch.Tensor
                    ) -> None:
    """:func:`_single_tensor_gravity` for one tensor with the step's scalars in ``s`` (sign,
    beta_t, lr): the body compiled by the ``fused=True`` path."""
    g = g * s[0]
    zeta = g / ((g * g.abs().amax()).square() + 1.0)
    lerp_(v, zeta, 1.0 - s[1])
    p.sub_(v * s[2])


_FUSED = CompiledUpdate(_gravity_kernel, "Gravity")


def gravity(params: list[torch.Tensor], grads: list[torch.Tensor],
            velocities: list[torch.Tensor], steps: list[int], *, fused: bool = False,
            **hyper: Any) -> None:
    """One Gravity step: with ``fused``, the compiled kernel; else the blocked path when it
    applies (dense contiguous float32/float64 CPU tensors, one step count); else the
    reference."""
    lists = (params, grads, velocities)
    same_step = bool(steps) and all(s == steps[0] for s in steps)
    if fused and same_step and can_fuse(*lists):
        k = steps[0] - 1
        beta_t = (hyper["beta"] * k + 1.0) / (k + 2.0)
        _FUSED(lists, (-1.0 if hyper["maximize"] else 1.0, beta_t, hyper["lr"]))
    elif same_step and can_block(*lists):
        _blocked_gravity(*lists, steps[0], **hyper)
    else:
        _single_tensor_gravity(*lists, steps, **hyper)


class Gravity(DrawsRandom, StatefulOptimizer):
    r"""Gravity (Bahrami & Zadeh, "Gravity Optimizer: a Kinematic Approach on Optimization in
    Deep Learning", 2021; papers.md row 82).

    Per tensor, with :math:`M = 1/\max|g_t|`:

    .. math::
        \zeta_t = \frac{g_t}{1 + (g_t/M)^2},\quad \hat\beta_t = \frac{\beta t + 1}{t + 2},\quad
        v_t = \hat\beta_t v_{t-1} + (1-\hat\beta_t)\zeta_t,\quad \theta_{t+1} = \theta_t - l\,v_t

    with :math:`v_0 \sim \mathcal N(0, (\alpha/l)^2)` drawn from ``generator`` (when none is
    given, a private generator seeded with 0: the global RNG is never used) and
    :math:`t = 0, 1, \dots` counting steps from 0, as the authors' Keras code does (so
    :math:`\hat\beta` starts at 1/2). Authors' defaults :math:`l = 0.1, \alpha = 0.01,
    \beta = 0.9`.

    Deviation from pytorch_optimizer's ``Gravity`` (not from the paper): that one counts
    :math:`t` from 1 and defaults to ``lr=0.01``.
    A zero gradient gives :math:`\zeta = 0/1 = 0` (the velocity still decays and moves the
    weights: that is the method, not a bug). The initial velocity's scale uses the group's
    peak lr (``initial_lr`` when a scheduler is attached, so a warmup starting at 0 is fine);
    a group with lr 0 starts at rest.

    State keys: ``step``, ``velocity``.

    Fast path: for dense contiguous float32/float64 CPU tensors at one step count, all
    :math:`\max|g|` come from ``aminmax``, then the update runs on 64k-element
    blocks (cache-resident) with the division folded into one ``addcdiv``;
    :func:`_single_tensor_gravity` is the reference it matches (float64 test to 1e-12).
    With ``fused=True`` the update is instead one kernel per tensor compiled by
    ``torch.compile`` (see :mod:`trainlab.optim._compiled`; a one-time compilation).
    """

    def __init__(self, params: Iterable[Any], lr: float = 0.1, alpha: float = 0.01,
                 beta: float = 0.9, *, maximize: bool = False,
                 generator: torch.Generator | None = None, fused: bool = False):
        owner = "Gravity"
        check_range("lr", lr, low=0.0, owner=owner)
        check_range("alpha", alpha, low=0.0, owner=owner)
        check_range("beta", beta, low=0.0, high=1.0, owner=owner)
        super().__init__(params, dict(lr=lr, alpha=alpha, beta=beta, maximize=maximize,
                                      fused=bool(fused)))
        self.generator = optimizer_generator(generator, self.param_groups)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        # the peak lr: a warmup schedule sets group["lr"] to 0 first, keeping "initial_lr"
        lr = group.get("initial_lr", group["lr"])
        v = torch.zeros_like(p)
        if lr > 0 and group["alpha"] > 0:
            v.normal_(0.0, group["alpha"] / lr, generator=self.generator)
        return {"velocity": v}

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor], states: list[dict[str, Any]]) -> None:
        gravity(params, grads, [s["velocity"] for s in states], [s["step"] for s in states],
                lr=group["lr"], beta=group["beta"], maximize=group["maximize"],
                fused=group.get("fused", False))


OPTIMIZERS.register("gravity", Gravity, papers=(82,),
                    summary="Gravity: velocity EMA of g / (1 + (g max|g|)^2)")
