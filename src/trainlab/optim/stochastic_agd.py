r"""Generalized stochastic Nesterov acceleration under interpolation (papers.md row 22)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from trainlab.errors import check_range
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim._stateful import StatefulOptimizer


def next_alpha(gamma: float, eta: float, mu: float) -> float:
    r"""The root in :math:`[0, 1]` of
    :math:`\alpha^2 = \eta\big((1-\alpha)\gamma + \alpha\mu\big)`."""
    b = eta * (gamma - mu)
    return (-b + math.sqrt(b * b + 4.0 * eta * gamma)) / 2.0


def _single_tensor_stochastic_agd(params: list[torch.Tensor], grads: list[torch.Tensor],
                                  vs: list[torch.Tensor], ws: list[torch.Tensor], *,
                                  eta: float, mu: float, alpha: float, gamma: float,
                                  maximize: bool) -> tuple[float, float]:
    r"""One step per tensor, in place. ``params`` hold :math:`y_k`, ``ws`` :math:`w_k`, ``vs``
    :math:`v_k`; ``alpha``/``gamma`` are :math:`\alpha_k, \gamma_k`. Returns
    :math:`(\alpha_{k+1}, \gamma_{k+1})` and leaves :math:`y_{k+1}` in ``params``."""
    gamma1 = (1.0 - alpha) * gamma + alpha * mu
    alpha1 = next_alpha(gamma1, eta, mu)
    gamma2 = (1.0 - alpha1) * gamma1 + alpha1 * mu
    for y, g, v, w in zip(params, grads, vs, ws):
        if maximize:
            g = torch.neg(g)
        w.copy_(y).add_(g, alpha=-eta)  # primal step w_{k+1} = y_k - eta g
        v.mul_((1.0 - alpha) * gamma).add_(y, alpha=alpha * mu).add_(g, alpha=-alpha)
        v.div_(gamma1)  # v_{k+1}
        y.copy_(v).mul_(alpha1 * gamma1).add_(w, alpha=gamma2).div_(gamma1 + alpha1 * mu)
    return alpha1, gamma1


class StochasticAGD(StatefulOptimizer):
    r"""Stochastic accelerated gradient descent from Nesterov's estimating sequences, as
    analysed under interpolation in "Faster Convergence of Stochastic Accelerated Gradient
    Descent under Interpolation" (Mishkin, Pilanci & Schmidt, 2024; papers.md row 22).

    .. math::
        \alpha_k^2 = \eta_k\big((1-\alpha_k)\gamma_k + \alpha_k\mu\big),\quad
        \gamma_{k+1} = (1-\alpha_k)\gamma_k + \alpha_k\mu \\
        y_k = \frac{\alpha_k\gamma_k v_k + \gamma_{k+1} w_k}{\gamma_k + \alpha_k\mu},\quad
        w_{k+1} = y_k - \eta_k \nabla f(y_k, z_k) \\
        v_{k+1} = \frac{(1-\alpha_k)\gamma_k v_k + \alpha_k\mu y_k
                  - \alpha_k\nabla f(y_k, z_k)}{\gamma_{k+1}}

    from :math:`v_0 = w_0 = y_0 = x_0`. The paper's generalized method accelerates any primal
    step that makes enough progress; this class uses the SGD step, the specialization the
    paper states for the strong growth condition
    :math:`\mathbb E\lVert\nabla f(x, z)\rVert^2 \le \rho\lVert\nabla f(x)\rVert^2`, with
    :math:`\eta = 1/(\rho L)` (pass it as ``lr``), which needs
    :math:`O(\sqrt{\rho L/\mu}\log(1/\epsilon))` iterations against SGD's
    :math:`O(\rho L/\mu \cdot \ldots)`. ``mu`` is the strong-convexity constant (0 for convex
    problems); ``gamma0`` defaults to ``mu`` when ``mu > 0`` (then
    :math:`\alpha_k = \sqrt{\eta\mu}` is constant) and to :math:`1/\eta` otherwise. ``lr`` may
    change between steps (schedules): :math:`\eta_k` is read each step.

    The parameters hold :math:`y_k`, where the gradient is taken; the state holds
    :math:`w_k` (the primal iterate: report it) and :math:`v_k`. State keys: ``step``, ``w``,
    ``v``, ``alpha``, ``gamma``.

    Note: the paper's arXiv history records an error in an earlier version's proofs; the
    method (Nesterov's scheme with stochastic gradients) is unchanged.

    Deviations from the paper: the SGD primal step only (see above; the paper's general
    progress condition is not offered), and ``gamma0`` defaults as stated above. The
    defaults ``lr = 1e-2`` and ``mu = 0`` are this library's; the paper sets the step from
    :math:`\rho` and :math:`L`, which the optimizer does not know. The recurrences above
    were not re-checked line by line against the paper for this paragraph.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, mu: float = 0.0,
                 gamma0: float | None = None, *, maximize: bool = False):
        owner = "StochasticAGD"
        check_range("lr", lr, low=0.0, owner=owner)
        check_range("mu", mu, low=0.0, owner=owner)
        if gamma0 is not None:
            check_range("gamma0", gamma0, low=0.0, low_open=True, owner=owner)
        super().__init__(params, dict(lr=lr, mu=mu, gamma0=gamma0, maximize=maximize))

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        gamma0 = group["gamma0"]
        if gamma0 is None:
            gamma0 = group["mu"] if group["mu"] > 0 else (1.0 / group["lr"] if group["lr"]
                                                          else 1.0)
        return {"w": p.detach().clone(), "v": p.detach().clone(),
                "alpha": next_alpha(gamma0, group["lr"], group["mu"]), "gamma": gamma0}

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor], states: list[dict[str, Any]]) -> None:
        s0 = states[0]
        alpha, gamma = _single_tensor_stochastic_agd(
            params, grads, [s["v"] for s in states], [s["w"] for s in states], eta=group["lr"],
            mu=group["mu"], alpha=s0["alpha"], gamma=s0["gamma"], maximize=group["maximize"])
        for s in states:
            s["alpha"], s["gamma"] = alpha, gamma


OPTIMIZERS.register("stochastic-agd", StochasticAGD, papers=(22,),
                    summary="stochastic Nesterov acceleration (estimating sequences), lr=1/(rho L)")
