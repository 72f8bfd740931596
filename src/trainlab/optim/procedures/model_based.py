r"""Stochastic model-based methods for weakly convex problems: stochastic subgradient,
prox-linear and proximal point, on robust phase retrieval (papers.md row 105).

Davis & Drusvyatskiy, "Stochastic model-based minimization of weakly convex functions"
(SIAM J. Optimization, 2019): each step samples one term :math:`f(\cdot, \xi)`, builds a model
:math:`f_x(\cdot, \xi)` of it around the iterate and takes
:math:`x_{t+1} = \arg\min_y f_{x_t}(y, \xi_t) + \frac{1}{2\alpha_t}\lVert y - x_t\rVert^2`.
The three models are the linearization (subgradient method), the composite linearization
:math:`h(c(x) + \nabla c(x)(y - x))` (prox-linear) and the term itself (proximal point).

Robust phase retrieval, :math:`f(x) = \frac1m\sum_i |\langle a_i, x\rangle^2 - b_i|`, is the
paper's test problem; every step below is its exact closed form (the prox-linear and
proximal-point subproblems reduce to one dimension along :math:`a_i`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from trainlab.errors import ConfigError, check_choice, check_range

Method = Literal["subgradient", "prox_linear", "proximal_point"]
METHODS: tuple[str, ...] = ("subgradient", "prox_linear", "proximal_point")


def phase_retrieval_loss(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac1m\sum_i |\langle a_i, x\rangle^2 - b_i|` for rows :math:`a_i` of ``a``."""
    return ((a @ x) ** 2 - b).abs().mean()


def subgradient_step(x: torch.Tensor, a: torch.Tensor, b: float, step: float) -> torch.Tensor:
    r"""Stochastic subgradient step on :math:`|\langle a,x\rangle^2 - b|`:
    :math:`x - \alpha\, 2\,\mathrm{sign}(\langle a,x\rangle^2 - b)\langle a,x\rangle a`."""
    u = a @ x
    return x - step * 2.0 * torch.sign(u * u - b) * u * a


def prox_linear_step(x: torch.Tensor, a: torch.Tensor, b: float, step: float) -> torch.Tensor:
    r"""Exact stochastic prox-linear step: minimizes
    :math:`|c + \langle v, y - x\rangle| + \lVert y - x\rVert^2/(2\alpha)` with
    :math:`c = \langle a,x\rangle^2 - b`, :math:`v = 2\langle a,x\rangle a`; the minimizer is
    :math:`y = x - \tau v` with :math:`\tau = \mathrm{clip}(c/\lVert v\rVert^2, -\alpha, \alpha)`.
    """
    u = a @ x
    c = u * u - b
    v = 2.0 * u * a
    vv = v @ v
    if float(vv) == 0.0:
        return x.clone()
    tau = torch.clamp(c / vv, -step, step)
    return x - tau * v


def proximal_point_step(x: torch.Tensor, a: torch.Tensor, b: float, step: float
                        ) -> torch.Tensor:
    r"""Exact stochastic proximal-point step:
    :math:`\arg\min_y |\langle a,y\rangle^2 - b| + \lVert y - x\rVert^2/(2\alpha)`.

    The minimizer is :math:`y = x + \frac{u - u_0}{\lVert a\rVert^2} a` where :math:`u` minimizes
    :math:`\varphi(u) = |u^2 - b| + (u - u_0)^2/(2\beta)` (:math:`u_0 = \langle a,x\rangle`,
    :math:`\beta = \alpha\lVert a\rVert^2`); :math:`\varphi` is a quadratic on each side of
    :math:`u^2 = b`, so the candidates are the two stationary points
    :math:`u_0/(1+2\beta)` (where :math:`u^2 \ge b`), :math:`u_0/(1-2\beta)` (where
    :math:`u^2 \le b`) and the kinks :math:`\pm\sqrt b`."""
    aa = float(a @ a)
    if aa == 0.0:
        return x.clone()
    u0, beta, bf = float(a @ x), step * aa, float(b)

    def phi(u: float) -> float:
        return abs(u * u - bf) + (u - u0) ** 2 / (2.0 * beta)

    cands = []
    u = u0 / (1.0 + 2.0 * beta)
    if u * u >= bf:
        cands.append(u)
    if beta != 0.5:
        u = u0 / (1.0 - 2.0 * beta)
        if u * u <= bf:
            cands.append(u)
    if bf >= 0.0:
        cands += [math.sqrt(bf), -math.sqrt(bf)]
    best = min(cands, key=phi) if cands else u0
    return x + ((best - u0) / aa) * a


_STEPS = {"subgradient": subgradient_step, "prox_linear": prox_linear_step,
          "proximal_point": proximal_point_step}


@dataclass(frozen=True)
class ModelBasedResult:
    """The final iterate and the full-objective values every ``record_every`` steps."""

    x: torch.Tensor
    losses: list[float]


def stochastic_model_based(x0: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *,
                           method: Method, step: float, iterations: int,
                           generator: torch.Generator | None = None,
                           record_every: int = 0) -> ModelBasedResult:
    r"""Run ``iterations`` steps of a stochastic model-based method on robust phase retrieval,
    sampling one measurement :math:`(a_i, b_i)` uniformly per step (from ``generator``) with a
    constant step size :math:`\alpha` (the paper's experiments use
    :math:`\alpha_t = \alpha_0/\sqrt{T+1}`, constant over a run of :math:`T` steps).

    Deviations from the paper: the step size is constant over a run (the paper's experiments use the
    same constant form, as stated above) and measurements are sampled uniformly with replacement;
    only the robust phase retrieval problem is implemented (the paper's other experiments are not).
    The paper's text was not re-read for this paragraph.
    """
    check_choice("method", method, METHODS, owner="stochastic_model_based")
    check_range("step", step, low=0.0, low_open=True, owner="stochastic_model_based")
    check_range("iterations", iterations, low=0, owner="stochastic_model_based")
    if a.dim() != 2 or b.shape != (a.shape[0],) or x0.shape != (a.shape[1],):
        raise ConfigError(f"stochastic_model_based expects a (m, d), b (m,), x0 (d,). Got "
                          f"{tuple(a.shape)}, {tuple(b.shape)}, {tuple(x0.shape)} instead.")
    fn = _STEPS[method]
    idx = torch.randint(0, a.shape[0], (iterations,), generator=generator)
    x, losses = x0.detach().clone(), []
    for t, i in enumerate(idx.tolist()):
        x = fn(x, a[i], b[i], step)
        if record_every and (t + 1) % record_every == 0:
            losses.append(float(phase_retrieval_loss(x, a, b)))
    return ModelBasedResult(x, losses)
