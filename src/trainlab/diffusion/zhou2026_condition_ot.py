r"""Optimal-transport refinement of the conditions of an autoregressive model with a diffusion
loss: move the cloud of generated conditions toward a reference cloud of "ideal" conditions
along a Wasserstein-2 gradient flow (only this refinement step is implemented here).

"Condition Errors Refinement in Autoregressive Image Generation with Diffusion Loss" (Zhou,
Li & Shen, ICLR 2026, papers.md row 5). The paper models a condition as
:math:`c_i = c_i^* + \eta_i` and refines the condition distribution :math:`P_c` by
Jordan-Kinderlehrer-Otto (JKO) steps of a gradient flow on
:math:`F(P_c) = \tfrac12 W_2^2(P_c, P_{c^*})` (+ a data term), solved with Sinkhorn, with a
geometric convergence claim :math:`W_2(P^{(k)}, P^*) \le \rho^k W_2(P^{(0)}, P^*)`.

For :math:`F = \tfrac12 W_2^2(\cdot, Q)` the JKO step with step h,
:math:`P^{+} = \arg\min_P F(P) + W_2^2(P, P^{(k)})/(2h)`, is the point at fraction
:math:`\tau = h/(1+h)` of the displacement interpolation from :math:`P^{(k)}` to Q, so
:math:`W_2(P^+, Q) = (1-\tau)W_2(P^{(k)}, Q)` (:math:`\rho = 1/(1+h)`). On point clouds:
compute the transport plan :math:`\Pi` (``ot.emd`` exactly, or ``ot.sinkhorn`` with entropic
regularisation), map each condition to its barycentric target
:math:`T(c_j) = \sum_l \Pi_{jl} c^*_l / \sum_l \Pi_{jl}`, and set
:math:`c_j \leftarrow c_j + \tau (T(c_j) - c_j)`. Transport is solved by the POT library.

Deviations from the paper / not done: the paper's full text was not available, so the JKO
discretisation above is our derivation, the data term :math:`\lambda E\|c - T^{-1}(x)\|^2`
is omitted; the autoregressive model with a per-token diffusion head and the decay of a
condition error along the sequence are in :mod:`trainlab.diffusion.zhou2026_ar_diffusion`
(:func:`~trainlab.diffusion.zhou2026_ar_diffusion.generate` takes the refinement as a
``refine`` hook; the ``condition-ot-refinement`` phenomenon applies it there).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from trainlab.diffusion._registry import DIFFUSION
from trainlab.errors import check_choice, check_range

_LOG = logging.getLogger("trainlab")


def transport_plan(c: torch.Tensor, c_star: torch.Tensor, *, method: str = "emd",
                   reg: float = 0.05) -> torch.Tensor:
    """The OT plan between uniform clouds ``c`` ``(n, d)`` and ``c_star`` ``(m, d)`` for the
    squared Euclidean cost (``ot.emd``, or ``ot.sinkhorn`` with ``reg`` relative to the mean
    cost)."""
    import ot

    check_choice("method", method, ("emd", "sinkhorn"), owner="transport_plan")
    a = np.full(len(c), 1 / len(c))
    b = np.full(len(c_star), 1 / len(c_star))
    cost = ot.dist(c.detach().numpy().astype(np.float64),
                   c_star.detach().numpy().astype(np.float64))
    if method == "emd":
        plan = ot.emd(a, b, cost)
    else:
        check_range("reg", reg, low=0.0, low_open=True, owner="transport_plan")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plan = ot.sinkhorn(a, b, cost, reg * cost.mean(), numItermax=10000)
        for w in caught:  # POT's non-convergence notice, passed on to the trainlab logger
            _LOG.warning("transport_plan (sinkhorn, reg %g): %s", reg, w.message)
    return torch.as_tensor(plan, dtype=c.dtype)


def w2(c: torch.Tensor, c_star: torch.Tensor) -> float:
    """Exact Wasserstein-2 distance between uniform clouds (``sqrt(ot.emd2)``)."""
    import ot

    a = np.full(len(c), 1 / len(c))
    b = np.full(len(c_star), 1 / len(c_star))
    cost = ot.dist(c.detach().numpy().astype(np.float64),
                   c_star.detach().numpy().astype(np.float64))
    return float(np.sqrt(ot.emd2(a, b, cost)))


def jko_refine_step(c: torch.Tensor, c_star: torch.Tensor, *, step: float = 1.0,
                    method: str = "emd", reg: float = 0.05) -> torch.Tensor:
    r"""One JKO step of :math:`\tfrac12 W_2^2(\cdot, P_{c^*})` with step ``step`` (h):
    :math:`c \leftarrow c + \tfrac{h}{1+h}(T(c) - c)` (module docstring)."""
    check_range("step", step, low=0.0, low_open=True, owner="jko_refine_step")
    plan = transport_plan(c, c_star, method=method, reg=reg)
    target = (plan @ c_star) / plan.sum(1, keepdim=True)
    return c + step / (1 + step) * (target - c)


@dataclass(frozen=True)
class Refinement:
    """The refined conditions and W2 to the reference after each step (first: before)."""

    conditions: torch.Tensor
    w2: list[float]


def refine_conditions(c: torch.Tensor, c_star: torch.Tensor, *, steps: int = 5,
                      step: float = 1.0, method: str = "emd", reg: float = 0.05) -> Refinement:
    """``steps`` JKO refinement steps, recording the exact W2 to ``c_star``."""
    check_range("steps", steps, low=0, owner="refine_conditions")
    dists = [w2(c, c_star)]
    for _ in range(steps):
        c = jko_refine_step(c, c_star, step=step, method=method, reg=reg)
        dists.append(w2(c, c_star))
    return Refinement(c, dists)


DIFFUSION.register("condition-ot-refinement", refine_conditions, papers=(5,),
                   summary="JKO / optimal-transport refinement of generated conditions toward "
                           "reference conditions (POT)")

__all__ = ["Refinement", "jko_refine_step", "refine_conditions", "transport_plan", "w2"]
