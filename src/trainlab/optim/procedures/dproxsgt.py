r"""DProxSGT and its compressed variant CDProxSGT: decentralized proximal stochastic gradient
tracking over a simulated graph of workers (papers.md row 117)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from trainlab.errors import ConfigError, check_range

GradFn = Callable[[torch.Tensor, int], torch.Tensor]
Prox = Callable[[torch.Tensor, float], torch.Tensor]
Compressor = Callable[[torch.Tensor], torch.Tensor]


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


def top_k(k: int) -> Compressor:
    """The top-k sparsifier applied to each worker's row: keeps the ``k`` entries of largest
    magnitude of each row of an ``(n, d)`` message and zeroes the rest (the biased, contractive
    compressor of CDProxSGT's experiments, "TopK")."""
    check_range("k", k, low=1, owner="top_k")

    def compress(m: torch.Tensor) -> torch.Tensor:
        if k >= m.shape[1]:
            return m.clone()
        idx = m.abs().topk(k, dim=1).indices
        return torch.zeros_like(m).scatter_(1, idx, m.gather(1, idx))
    return compress


@dataclass(frozen=True)
class DecentralizedResult:
    """Worker iterates ``x`` (n, d), tracked gradients ``y`` (n, d), and per recorded step the
    consensus error :math:`\\frac1n\\sum_i\\lVert x_i - \\bar x\\rVert^2`."""

    x: torch.Tensor
    y: torch.Tensor
    consensus: list[float]


def _check_inputs(owner: str, x0: torch.Tensor, mixing: torch.Tensor, step: float,
                  iterations: int) -> None:
    if x0.dim() != 2:
        raise ConfigError(f"{owner} expects x0 of shape (n, d). Got {tuple(x0.shape)} instead.")
    n = x0.shape[0]
    if mixing.shape != (n, n):
        raise ConfigError(f"{owner}: the mixing matrix must be ({n}, {n}). "
                          f"Got {tuple(mixing.shape)} instead.")
    ones = torch.ones(n, dtype=mixing.dtype, device=mixing.device)
    if not (torch.allclose(mixing.sum(0), ones) and torch.allclose(mixing.sum(1), ones)):
        raise ConfigError(f"{owner}: the mixing matrix must be doubly stochastic "
                          "(rows and columns sum to 1)")
    check_range("step", step, low=0.0, low_open=True, owner=owner)
    check_range("iterations", iterations, low=0, owner=owner)


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

    Deviations from the paper: the workers are simulated as rows of one tensor (no communication
    layer); the order of the updates follows the authors' code, as stated above, because the paper's
    Algorithm 1 could not be read; ``step`` and ``iterations`` have no defaults (the paper's values
    were not checked).

    Args:
        x0: ``(n, d)`` initial worker iterates.
        grad_fn: ``grad_fn(x, t) -> (n, d)``, each worker's stochastic gradient of its own
            :math:`f_i` at its own row of ``x`` (one or a few samples, the paper's
            :math:`O(1)` per update); randomness is the caller's (a generator it holds).
        mixing: ``(n, n)`` symmetric doubly stochastic :math:`W`.
        prox: ``prox(z, eta)`` of :math:`\eta r`, row-wise (default: identity, :math:`r=0`).

    The order (track and gossip :math:`y`, proximal step, gossip :math:`x`) agrees with the
    authors' code (``yonggui-yan/DProxSGT``, ``train_CDProxSGT`` with identity compressors and
    :math:`\gamma_x=\gamma_y=1`, which their scripts name DProxSGT); the paper's Algorithm 1
    itself could not be read here. Compressed variant: :func:`cdproxsgt`.
    """
    _check_inputs("dproxsgt", x0, mixing, step, iterations)
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


def cdproxsgt(x0: torch.Tensor, grad_fn: GradFn, mixing: torch.Tensor, *, step: float,
              iterations: int, gamma_x: float, gamma_y: float,
              compressor_x: Compressor | None = None, compressor_y: Compressor | None = None,
              prox: Prox | None = None) -> DecentralizedResult:
    r"""CDProxSGT (the compressed variant of :func:`dproxsgt`, same paper, papers.md row 117):
    each worker gossips only compressed differences against an auxiliary copy
    (:math:`\hat x_i`, :math:`\hat y_i`, known to its neighbours), with consensus step sizes
    :math:`\gamma_x, \gamma_y \in (0, 1]`. With :math:`y^{-1}=g^{-1}=\hat x=\hat y=0`:

    .. math::
        y^{t-\frac12} &= y^{t-1} + g^t - g^{t-1},\quad
        \hat y \leftarrow \hat y + Q_y\big(y^{t-\frac12} - \hat y\big),\quad
        y^t = y^{t-\frac12} + \gamma_y (W - I)\,\hat y \\
        x^{t+\frac12} &= \mathrm{prox}_{\eta r}\big(x^t - \eta\, y^t\big),\quad
        \hat x \leftarrow \hat x + Q_x\big(x^{t+\frac12} - \hat x\big),\quad
        x^{t+1} = x^{t+\frac12} + \gamma_x (W - I)\,\hat x

    (the compression error stays in :math:`y - \hat y`, :math:`x - \hat x` and is sent
    later: error feedback through the copies). With identity compressors and
    :math:`\gamma_x=\gamma_y=1` it is DProxSGT. Written from the authors' code
    (``yonggui-yan/DProxSGT``, ``train_CDProxSGT``; their scripts use Top-30%/40% with
    :math:`\gamma_x=\gamma_y=0.5`), since the paper's Algorithm 2 could not be read here; so
    no defaults are claimed for ``gamma_x``/``gamma_y``.

    Args:
        compressor_x, compressor_y: ``Q(m) -> m'`` on the ``(n, d)`` stacked messages, each
            row compressed on its own worker (e.g. :func:`top_k`; default: identity).
        gamma_x, gamma_y: consensus step sizes in ``(0, 1]``.
        Others as :func:`dproxsgt`.
    """
    _check_inputs("cdproxsgt", x0, mixing, step, iterations)
    check_range("gamma_x", gamma_x, low=0.0, high=1.0, low_open=True, owner="cdproxsgt")
    check_range("gamma_y", gamma_y, low=0.0, high=1.0, low_open=True, owner="cdproxsgt")
    prox = prox or (lambda z, eta: z)
    qx = compressor_x or (lambda m: m)
    qy = compressor_y or (lambda m: m)
    eye = torch.eye(x0.shape[0], dtype=mixing.dtype, device=mixing.device)
    x = x0.detach().clone()
    y = torch.zeros_like(x)
    g_prev = torch.zeros_like(x)
    x_hat, y_hat = torch.zeros_like(x), torch.zeros_like(x)
    consensus = []
    for t in range(iterations):
        g = grad_fn(x, t)
        y = y + g - g_prev
        y_hat = y_hat + qy(y - y_hat)
        y = y + gamma_y * (mixing - eye) @ y_hat
        x = prox(x - step * y, step)
        x_hat = x_hat + qx(x - x_hat)
        x = x + gamma_x * (mixing - eye) @ x_hat
        g_prev = g
        consensus.append(float(((x - x.mean(0)) ** 2).sum(1).mean()))
    return DecentralizedResult(x, y, consensus)
