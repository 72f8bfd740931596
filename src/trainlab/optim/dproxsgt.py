r"""DProxSGT: decentralized proximal stochastic gradient tracking over a simulated graph of
workers (papers.md row 117)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from trainlab.errors import ConfigError, check_range

GradFn = Callable[[torch.Tensor, int], torch.Tensor]
Prox = Callable[[torch.Tensor, float], torch.Tensor]


def ring_mixing_matrix(n: int, self_weight: float = 1.0 / 3.0,
                       dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The symmetric doubly stochastic mixing matrix of a ring of ``n`` workers: each keeps
    ``self_weight`` and gives ``(1 - self_weight) / 2`` to each neighbour."""
    check_range("n", n, low=3, owner="ring_mixing_matrix")
    check_range("self_weight", self_weight, low=0.0, high=1.0, high_open=True,
                owner="ring_mixing_matrix")
    w = torch.eye(n, dtype=dtype) * self_weight
    side = (1.0 - self_weight) / 2.0
    for i in range(n):
        w[i, (i + 1) % n] += side
        w[i, (i - 1) % n] += side
    return w


def soft_threshold(lam: float) -> Prox:
    r"""The proximal map of :math:`r(x) = \lambda\lVert x\rVert_1`:
    :math:`\mathrm{prox}_{\eta r}(z) = \mathrm{sign}(z)\max(|z| - \eta\lambda, 0)`."""
    check_range("lam", lam, low=0.0, owner="soft_threshold")
    return lambda z, eta: torch.sign(z) * torch.clamp(z.abs() - eta * lam, min=0.0)


@dataclass(frozen=True)
class DecentralizedResult:
    """Worker iterates ``x`` (n, d), tracked gradients ``y`` (n, d), and per recorded step the
    consensus error :math:`\\frac1n\\sum_i\\lVert x_i - \\bar x\\rVert^2`."""

    x: torch.Tensor
    y: torch.Tensor
    consensus: list[float]


def dproxsgt(x0: torch.Tensor, grad_fn: GradFn, mixing: torch.Tensor, *, step: float,
             iterations: int, prox: Prox | None = None) -> DecentralizedResult:
    r"""DProxSGT (Yan, Chen, Chen, Cui, Lu & Xu, "Compressed Decentralized Proximal Stochastic
    Gradient Method for Nonconvex Composite Problems with Heterogeneous Data", ICML 2023;
    papers.md row 117) for :math:`\min_x \frac1n\sum_i f_i(x) + r(x)`, simulated with all
    workers' vectors stacked in rows: with :math:`y^{-1} = g^{-1} = 0`, for :math:`t \ge 0`

    .. math::
        g_i^t = \nabla F_i(x_i^t, \xi_i^t),\quad
        y^{t} = W\big(y^{t-1} + g^t - g^{t-1}\big),\quad
        x^{t+1} = W\,\mathrm{prox}_{\eta r}\big(x^t - \eta\, y^t\big)

    (gradient tracking: the average of the :math:`y_i` equals the average current gradient;
    :math:`W` is the mixing matrix of the graph, one communication round for :math:`y` and one
    for :math:`x` per iteration).

    Args:
        x0: ``(n, d)`` initial worker iterates.
        grad_fn: ``grad_fn(x, t) -> (n, d)``, each worker's stochastic gradient of its own
            :math:`f_i` at its own row of ``x`` (one or a few samples, the paper's
            :math:`O(1)` per update); randomness is the caller's (a generator it holds).
        mixing: ``(n, n)`` symmetric doubly stochastic :math:`W`.
        prox: ``prox(z, eta)`` of :math:`\eta r`, row-wise (default: identity, :math:`r=0`).

    Uncertain / missing: the recursion was written from the paper's description (gradient
    tracking, then a proximal step and a gossip of :math:`x`); the order of the two gossip
    rounds should be checked against its Algorithm 1. The compressed variant (CDProxSGT,
    compressed gossip with auxiliary copies) is not implemented.
    """
    if x0.dim() != 2:
        raise ConfigError(f"dproxsgt expects x0 of shape (n, d). Got {tuple(x0.shape)} instead.")
    n = x0.shape[0]
    if mixing.shape != (n, n):
        raise ConfigError(f"dproxsgt: the mixing matrix must be ({n}, {n}). "
                          f"Got {tuple(mixing.shape)} instead.")
    ones = torch.ones(n, dtype=mixing.dtype, device=mixing.device)
    if not (torch.allclose(mixing.sum(0), ones) and torch.allclose(mixing.sum(1), ones)):
        raise ConfigError("dproxsgt: the mixing matrix must be doubly stochastic "
                          "(rows and columns sum to 1)")
    check_range("step", step, low=0.0, low_open=True, owner="dproxsgt")
    check_range("iterations", iterations, low=0, owner="dproxsgt")
    prox = prox or (lambda z, eta: z)
    x = x0.detach().clone()
    y = torch.zeros_like(x)
    g_prev = torch.zeros_like(x)
    consensus = []
    for t in range(iterations):
        g = grad_fn(x, t)
        y = mixing @ (y + g - g_prev)
        x = mixing @ prox(x - step * y, step)
        g_prev = g
        consensus.append(float(((x - x.mean(0)) ** 2).sum(1).mean()))
    return DecentralizedResult(x, y, consensus)
