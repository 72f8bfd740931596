r"""Gradient descent, heavy ball and Nesterov's method with constant or Polyak step sizes
(papers.md rows 38 and 62)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.optim._compiled import CompiledUpdate, can_fuse
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim._stateful import StatefulOptimizer


def polyak_step(loss: float, f_star: float, grad_sq_norm: float) -> float:
    r"""Polyak's step :math:`\max(f(x) - f^*, 0)/\lVert g\rVert^2` (0 when the gradient
    vanishes)."""
    if grad_sq_norm <= 0.0:
        return 0.0
    return max(loss - f_star, 0.0) / grad_sq_norm


def _single_tensor_gd(params: list[torch.Tensor], grads: list[torch.Tensor],
                      anchors: list[torch.Tensor], *, step_size: float, momentum: float,
                      nesterov: bool, maximize: bool) -> None:
    """One GD / heavy-ball / Nesterov step per tensor (reference implementation).

    ``anchors`` is :math:`x_{k-1}` for heavy ball and :math:`x_k` for Nesterov (``params`` then
    hold the extrapolated point :math:`y_k`); both start as a copy of the initial weights."""
    for p, g, a in zip(params, grads, anchors):
        if maximize:
            g = torch.neg(g)
        if momentum == 0.0:
            p.add_(g, alpha=-step_size)
        elif nesterov:  # x_{k+1} = y_k - h g(y_k);  y_{k+1} = x_{k+1} + b (x_{k+1} - x_k)
            x_new = torch.add(p, g, alpha=-step_size)
            p.copy_(x_new).add_(x_new - a, alpha=momentum)
            a.copy_(x_new)
        else:  # x_{k+1} = x_k - h g_k + b (x_k - x_{k-1})
            delta = torch.sub(p, a).mul_(momentum).add_(g, alpha=-step_size)
            a.copy_(p)
            p.add_(delta)


def _heavy_ball_kernel(p: torch.Tensor, g: torch.Tensor, a: torch.Tensor, s: torch.Tensor
                       ) -> None:
    """The heavy-ball step of :func:`_single_tensor_gd` for one tensor, scalars ``s`` = (sign,
    step size, momentum): the body compiled by the ``fused=True`` path."""
    delta = (p - a) * s[2] - g * (s[0] * s[1])
    # Under inductor (torch 2.13) a plain copy of an input that is mutated afterwards
    # (``a.copy_(p)`` or of ``p.clone()``, then ``p.add_``) stores the *mutated* value; an
    # arithmetic copy (``p + 0``: exact) is kept as the old value. tests/optim/test_fused.py
    # checks the result against the eager reference.
    p_old = p + 0
    p.add_(delta)
    a.copy_(p_old)


def _nesterov_kernel(p: torch.Tensor, g: torch.Tensor, a: torch.Tensor, s: torch.Tensor
                     ) -> None:
    """The Nesterov step of :func:`_single_tensor_gd` for one tensor, scalars ``s`` = (sign,
    step size, momentum): the body compiled by the ``fused=True`` path."""
    x_new = p - g * (s[0] * s[1])
    p.copy_(x_new + (x_new - a) * s[2])
    a.copy_(x_new)


_FUSED = {False: CompiledUpdate(_heavy_ball_kernel, "GradientDescent (heavy ball)"),
          True: CompiledUpdate(_nesterov_kernel, "GradientDescent (Nesterov)")}


class GradientDescent(StatefulOptimizer):
    r"""The gradient-descent family as analysed in "Gradient Descent-Type Methods: Background
    and Simple Unified Convergence Analysis" (Tran-Dinh & van Dijk, 2022; papers.md row 38),
    also the baselines of "Optimization Methods for Large-Scale Machine Learning" (Bottou,
    Curtis & Nocedal, 2018; row 62).

    .. math::
        \text{GD: } x_{k+1} = x_k - h_k \nabla f(x_k) \qquad
        \text{heavy ball: } x_{k+1} = x_k - h_k\nabla f(x_k) + \beta(x_k - x_{k-1}) \\
        \text{Nesterov: } x_{k+1} = y_k - h_k\nabla f(y_k),\quad
        y_{k+1} = x_{k+1} + \beta(x_{k+1} - x_k)

    For Nesterov the parameters hold :math:`y_k` (where the gradient is taken); the state
    holds :math:`x_k`. Step-size rules: ``"constant"`` (:math:`h_k = \mathrm{lr}`, e.g. 1/L) and
    ``"polyak"`` (:math:`h_k = \min(\mathrm{lr}\,(f(x_k) - f^*)/\lVert\nabla f\rVert^2,
    \texttt{max\_step})`, which needs a closure returning the loss, norms over the param group).
    On a quadratic with :math:`\mu I \preceq A \preceq L I`, heavy ball with
    :math:`h = 4/(\sqrt L+\sqrt\mu)^2`, :math:`\beta = ((\sqrt L - \sqrt\mu)/(\sqrt L+\sqrt\mu))^2`
    contracts at rate :math:`\sqrt\beta` (tests check it). Heavy ball with a constant lr equals
    ``torch.optim.SGD(momentum=beta)``.

    ``fused=True`` runs the momentum steps as one kernel per tensor compiled by
    ``torch.compile`` (see :mod:`trainlab.optim._compiled`; a one-time compilation).

    State keys: ``step``, ``anchor`` (only with momentum).

    Deviations from the paper: not checked against the papers' text for this paragraph. By
    construction: the Polyak rule multiplies the classical step :math:`(f -
    f^*)/\lVert\nabla f\rVert^2` by ``lr`` and caps it at ``max_step`` (both safeguards of
    this library; ``lr = 1`` and an infinite cap give the classical step), ``f_star``
    defaults to 0, and the momentum :math:`\beta` is constant (no schedule such as
    Nesterov's :math:`k/(k+3)`). Norms are per param group. The default ``lr = 1e-2`` is
    this library's choice.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, momentum: float = 0.0,
                 nesterov: bool = False, step_rule: Literal["constant", "polyak"] = "constant",
                 f_star: float = 0.0, max_step: float = float("inf"), *,
                 maximize: bool = False, fused: bool = False):
        owner = "GradientDescent"
        check_range("lr", lr, low=0.0, owner=owner)
        check_range("momentum", momentum, low=0.0, high=1.0, high_open=True, owner=owner)
        check_range("max_step", max_step, low=0.0, low_open=True, owner=owner)
        check_choice("step_rule", step_rule, ("constant", "polyak"), owner="GradientDescent")
        if nesterov and momentum == 0.0:
            raise ConfigError("The 'nesterov' option of GradientDescent needs momentum > 0. "
                              "Got momentum=0.0 instead.")
        self.requires_closure = step_rule == "polyak"  # the instance refines its class
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov,
                                      step_rule=step_rule, f_star=f_star, max_step=max_step,
                                      maximize=maximize, fused=bool(fused)))

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {"anchor": p.detach().clone()} if group["momentum"] else {}

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor], states: list[dict[str, Any]]) -> None:
        h = group["lr"]
        if group["step_rule"] == "polyak":
            sq = sum(float(torch.linalg.vector_norm(g) ** 2) for g in grads)
            ratio = polyak_step(float(self._closure_loss), group["f_star"], sq)
            h = min(group["lr"] * ratio, group["max_step"])
        anchors = [s.get("anchor", p) for s, p in zip(states, params)]
        if group["momentum"] and group.get("fused", False) and can_fuse(params, grads,
                                                                         anchors):
            _FUSED[group["nesterov"]]((params, grads, anchors),
                                      (-1.0 if group["maximize"] else 1.0, h,
                                       group["momentum"]))
            return
        _single_tensor_gd(params, grads, anchors, step_size=h, momentum=group["momentum"],
                          nesterov=group["nesterov"], maximize=group["maximize"])


OPTIMIZERS.register("gd", GradientDescent, papers=(38, 62),
                    summary="GD / heavy ball / Nesterov with constant or Polyak step sizes")
