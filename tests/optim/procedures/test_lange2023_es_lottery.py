"""ES lottery tickets (papers.md row 81): SNR pruning mechanics, and the claim's mechanism on a
teacher with mixed curvature: pycma's Sep-CMA-ES adapts sigma_i to h_i^{-1/2}, so |mu|/sigma
keeps a small weight the loss is sensitive to where magnitude pruning keeps noise."""

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim.procedures import PROCEDURES
from trainlab.optim.procedures.lange2023_es_lottery import (
    es_lottery,
    prune_mask,
    sep_cma_es,
    snr_scores,
    sparsity_schedule,
)

D = torch.float64


def _teacher(scale, support, values, n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, len(scale), generator=g, dtype=D) * torch.tensor(scale, dtype=D)
    w = torch.zeros(len(scale), dtype=D)
    w[support] = torch.tensor(values, dtype=D)
    y = x @ w
    return lambda v: float(((x @ v - y) ** 2).mean())


def test_scores_masks_and_schedule():
    mean = torch.tensor([0.5, -2.0, 0.1, 1.0], dtype=D)
    std = torch.tensor([0.1, 4.0, 0.001, 1.0], dtype=D)
    assert torch.allclose(snr_scores(mean, std), torch.tensor([5.0, 0.5, 100.0, 1.0], dtype=D))
    mask = torch.tensor([True, True, False, True])
    assert prune_mask(snr_scores(mean, std), mask, 2).tolist() == [True, False, False, True]
    assert sparsity_schedule(3) == pytest.approx([0.2, 0.36, 0.488])
    with pytest.raises(ConfigError, match="keep"):
        prune_mask(mean, mask, 4)
    with pytest.raises(ConfigError, match="keep_rate"):
        sparsity_schedule(2, keep_rate=1.0)


def test_snr_keeps_sensitive_small_weights_where_magnitude_keeps_noise():
    loss = _teacher([10, 10, 1, 1, 1, 0.01, 0.01, 0.01, 1, 1], [0, 1, 2], [0.05, -0.05, 0.5])
    mean, std = sep_cma_es(loss, torch.zeros(10, dtype=D), sigma0=0.3, generations=100)
    everything = torch.ones(10, dtype=torch.bool)
    snr = prune_mask(snr_scores(mean, std), everything, 3)
    magnitude = prune_mask(mean.abs(), everything, 3)
    assert snr.nonzero().squeeze(1).tolist() == [0, 1, 2]
    assert magnitude.nonzero().squeeze(1).tolist() != [0, 1, 2]
    # sigma adapts to curvature: flat directions (scale 0.01) keep a far larger sigma
    assert float(std[5:8].min()) > 10 * float(std[:2].max())


def test_lottery_rounds_follow_the_schedule_and_keep_the_support():
    loss = _teacher([1.0] * 10, [1, 4, 7], [1.0, -0.6, 0.8])
    rounds = es_lottery(loss, torch.zeros(10, dtype=D), rounds=3, generations=60)
    assert [int(r.mask.sum()) for r in rounds] == [10, 8, 6, 5]
    for prev, nxt in zip(rounds, rounds[1:]):
        assert bool((nxt.mask <= prev.mask).all())  # nested masks
        assert float(nxt.mean[~nxt.mask].abs().max()) == 0.0
    assert bool(rounds[-1].mask[[1, 4, 7]].all())
    assert rounds[-1].loss < 1e-6
    assert PROCEDURES.entry("es-lottery").papers == (81,)
