r"""DoG: "distance over gradients", a learning-rate-free SGD step size (papers.md row 48)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from trainlab.errors import check_range
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim._stateful import StatefulOptimizer


def _sq_norm(tensors: Iterable[torch.Tensor]) -> float:
    return sum(float(torch.linalg.vector_norm(t).square()) for t in tensors)


def _single_tensor_dog(params: list[torch.Tensor], grads: list[torch.Tensor],
                       initials: list[torch.Tensor], rbars: list[float], gsums: list[float], *,
                       lr: float, eps: float, layerwise: bool, maximize: bool
                       ) -> tuple[list[float], list[float]]:
    r"""One DoG step, in place on ``params``; returns the new ``(rbar, G)`` per tensor.

    Global DoG shares :math:`\bar r` and :math:`G` over all ``params`` (the list holds the same
    value for each); layer-wise (L-DoG) keeps them per tensor."""
    gs = [torch.neg(g) if maximize else g for g in grads]
    groups = [[i] for i in range(len(params))] if layerwise else [list(range(len(params)))]
    new_r, new_g = list(rbars), list(gsums)
    for idx in groups:
        dist = math.sqrt(_sq_norm(params[i] - initials[i] for i in idx))
        rbar = max(rbars[idx[0]], dist)
        gsum = gsums[idx[0]] + _sq_norm(gs[i] for i in idx)
        eta = lr * rbar / math.sqrt(gsum + eps)
        for i in idx:
            params[i].add_(gs[i], alpha=-eta)
            new_r[i], new_g[i] = rbar, gsum
    return new_r, new_g


class DoG(StatefulOptimizer):
    r"""DoG (Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step
    Size Schedule", ICML 2023), the parameter-free building block of U-DoG (Kreisler, Ivgi,
    Hinder & Carmon, "Accelerated Parameter-Free Stochastic Optimization", 2024; papers.md row
    48).

    .. math::
        \bar r_t = \max\big(r_\epsilon, \max_{i\le t}\lVert x_i - x_0\rVert\big),\quad
        G_t = \sum_{i\le t}\lVert g_i\rVert^2,\quad
        x_{t+1} = x_t - \mathrm{lr}\cdot\frac{\bar r_t}{\sqrt{G_t + \epsilon}}\, g_t

    with :math:`r_\epsilon = \texttt{reps\_rel}\,(1 + \lVert x_0\rVert)`. Norms are over the
    whole param group; ``layerwise=True`` is L-DoG (per tensor). ``lr`` is a multiplier (1 =
    the paper's DoG; a schedule may anneal it). Defaults as the authors' package
    (``reps_rel=1e-6``, ``eps=1e-8``).

    U-DoG itself (UniXGrad extragradient with DoG steps) is :class:`trainlab.optim.udog.UDoG`.
    Missing here: the polynomial-decay iterate averaging the DoG paper recommends for
    evaluation.

    State keys: ``step``, ``x0``, ``rbar``, ``g_sq_sum``.

    Deviations from the paper: checked against the authors' PyTorch package (formll/dog,
    ``DoG`` and ``LDoG``): same initial distance ``reps_rel (1 + ||x_0||)``, running maximum
    distance, eps added once to the sum of squared gradient norms, multiplier ``lr = 1``.
    Not implemented: that package's ``weight_decay`` (L2 added to the gradient) and
    ``init_eta`` options, and the polynomial-decay iterate averaging (see above). The DoG
    and U-DoG papers' texts were not read for this paragraph (the package recommends
    ``reps_rel = 1e-4`` for models with batch normalization).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1.0, reps_rel: float = 1e-6,
                 eps: float = 1e-8, layerwise: bool = False, *, maximize: bool = False):
        owner = "DoG"
        check_range("lr", lr, low=0.0, owner=owner)
        check_range("reps_rel", reps_rel, low=0.0, low_open=True, owner=owner)
        check_range("eps", eps, low=0.0, owner=owner)
        super().__init__(params, dict(lr=lr, reps_rel=reps_rel, eps=eps, layerwise=layerwise,
                                      maximize=maximize))

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {"x0": p.detach().clone(), "rbar": None, "g_sq_sum": 0.0}

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor], states: list[dict[str, Any]]) -> None:
        if any(s["rbar"] is None for s in states):  # first step: r_eps from ||x_0||
            if group["layerwise"]:
                for p, s in zip(params, states):
                    s["rbar"] = group["reps_rel"] * (1.0 + float(torch.linalg.vector_norm(p)))
            else:
                r0 = group["reps_rel"] * (1.0 + math.sqrt(_sq_norm(params)))
                for s in states:
                    s["rbar"] = r0
        rbars, gsums = _single_tensor_dog(
            params, grads, [s["x0"] for s in states], [s["rbar"] for s in states],
            [s["g_sq_sum"] for s in states], lr=group["lr"], eps=group["eps"],
            layerwise=group["layerwise"], maximize=group["maximize"])
        for s, r, g in zip(states, rbars, gsums):
            s["rbar"], s["g_sq_sum"] = r, g


OPTIMIZERS.register("dog", DoG, papers=(48,),
                    summary="DoG / L-DoG: step = max distance from x0 / sqrt(sum |g|^2), no lr")
