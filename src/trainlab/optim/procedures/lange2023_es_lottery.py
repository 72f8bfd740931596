r"""Lottery tickets for evolution strategies: iterative pruning by the search distribution's
signal-to-noise ratio, with rewinding to the initial weights.

Each round trains the masked weights with a separable evolution strategy whose search
distribution is :math:`\mathcal{N}(\mu, \operatorname{diag}\sigma^2)`, scores every remaining
weight by

.. math::
    \mathrm{SNR}_i = |\mu_i| / \sigma_i,

keeps the weights above a global threshold that leaves a fraction :math:`0.8^k` of all weights
after round :math:`k` (sparsity :math:`s_k = 1 - 0.8^k`), and rewinds the kept weights to their
initial values for the next round. The SNR carries curvature information that weight
magnitude does not: a separable ES adapts :math:`\sigma_i \propto h_i^{-1/2}` to the diagonal
curvature :math:`h_i`, so a weight the loss is sensitive to keeps a high SNR even when small.

The ES is the separable CMA-ES of ``pycma`` (``cma.CMAEvolutionStrategy`` with
``CMA_diagonal``), the paper's main strategy; :math:`\sigma_i` is its step size times
:math:`\sqrt{C_{ii}}` (``result.stds``).

References:
    Lange, Sprekeler. "Lottery Tickets in Evolutionary Optimization: On Sparse
    Backpropagation-Free Trainability", ICML 2023 (papers.md row 81): SNR pruning with the
    0.8 keep rate per round and weight rewinding; Sep-CMA-ES; the authors' code
    (es-lottery, evosax) for the schedule.

Deviations from the paper:
    pycma's Sep-CMA-ES instead of evosax's, with pycma's default population and learning
    rates unless given; the paper's code passes the diagonal covariance alone (a variance)
    as the noise scale for Sep-CMA-ES, here the standard deviation ``sigma * sqrt(C_ii)`` is
    used. Full-batch losses; no mean decay. Biases are not treated separately (the caller
    passes the weights to prune).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from trainlab.errors import ConfigError, check_range

Loss = Callable[[torch.Tensor], float]


def snr_scores(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``|mu| / sigma`` per weight."""
    if mean.shape != std.shape:
        raise ConfigError(f"snr_scores: mean {tuple(mean.shape)} and std {tuple(std.shape)} "
                          "must have the same shape.")
    return mean.abs() / std


def prune_mask(scores: torch.Tensor, mask: torch.Tensor, keep: int) -> torch.Tensor:
    """The ``keep`` currently unmasked weights with the largest ``scores`` (a new mask)."""
    alive = int(mask.sum())
    if not 0 <= keep <= alive:
        raise ConfigError(f"prune_mask: 'keep' must be in [0, {alive}]. Got {keep} instead.")
    s = torch.where(mask, scores, torch.full_like(scores, -torch.inf))
    out = torch.zeros_like(mask)
    out[torch.topk(s, keep).indices] = True
    return out


def sparsity_schedule(rounds: int, *, keep_rate: float = 0.8) -> list[float]:
    """``s_k = 1 - keep_rate^k`` for ``k = 1..rounds``."""
    check_range("keep_rate", keep_rate, low=0.0, high=1.0, low_open=True, high_open=True,
                owner="sparsity_schedule")
    return [1 - keep_rate**k for k in range(1, rounds + 1)]


def sep_cma_es(loss: Loss, x0: torch.Tensor, *, sigma0: float, generations: int,
               popsize: int | None = None, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise ``loss`` from ``x0`` with pycma's separable CMA-ES; returns the final mean and
    per-coordinate standard deviations ``sigma * sqrt(diag C)``."""
    import cma

    check_range("generations", generations, low=1, owner="sep_cma_es")
    opts = {"CMA_diagonal": True, "seed": seed, "verbose": -9}
    if popsize is not None:
        opts["popsize"] = popsize
    es = cma.CMAEvolutionStrategy(x0.double().numpy(), sigma0, opts)
    for _ in range(generations):
        pop = es.ask()
        es.tell(pop, [float(loss(torch.from_numpy(np.asarray(p)))) for p in pop])
    return torch.from_numpy(np.asarray(es.result.xfavorite)), torch.from_numpy(
        np.asarray(es.result.stds))


@dataclass(frozen=True)
class TicketRound:
    """One round: the mask it trained, the ES mean/std (zeros where masked) and the loss."""

    mask: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    loss: float


def es_lottery(loss: Loss, w_init: torch.Tensor, *, rounds: int, generations: int,
               sigma0: float = 0.1, keep_rate: float = 0.8, popsize: int | None = None,
               seed: int = 1) -> list[TicketRound]:
    """Iterative SNR pruning: ``rounds + 1`` ES runs (dense first), pruning after each.

    Args:
        loss: ``w -> float`` on the full flat weight vector (pruned weights are 0).
        w_init: the initial weights, rewound to at every round.
        rounds: pruning rounds (round ``k`` trains at sparsity ``1 - keep_rate^k``).
        generations, sigma0, popsize, seed: the Sep-CMA-ES run of each round.
    """
    check_range("rounds", rounds, low=0, owner="es_lottery")
    w_init = w_init.detach().double()
    mask = torch.ones_like(w_init, dtype=torch.bool)
    out = []
    for k in range(rounds + 1):
        idx = mask.nonzero().squeeze(1)

        def masked_loss(v: torch.Tensor, idx: torch.Tensor = idx) -> float:
            w = torch.zeros_like(w_init)
            w[idx] = v
            return loss(w)

        mean_k, std_k = sep_cma_es(masked_loss, w_init[idx], sigma0=sigma0,
                                   generations=generations, popsize=popsize, seed=seed + k)
        mean, std = torch.zeros_like(w_init), torch.zeros_like(w_init)
        mean[idx], std[idx] = mean_k, std_k
        out.append(TicketRound(mask.clone(), mean, std, float(masked_loss(mean_k))))
        if k < rounds:
            keep = int(round(keep_rate ** (k + 1) * w_init.numel()))
            scores = torch.where(mask, snr_scores(mean, std.clamp_min(1e-300)),
                                 torch.zeros_like(mean))
            mask = prune_mask(scores, mask, keep)
    return out
