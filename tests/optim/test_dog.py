"""DoG and L-DoG against the authors' package (dog-optimizer, Ivgi, Hinder & Carmon 2023)."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.optim import DoG


def _grads(seed=2, n=15):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(3, 2, generator=g, dtype=torch.float64),
             torch.randn(4, generator=g, dtype=torch.float64)] for _ in range(n)]


@pytest.mark.parametrize("layerwise", [False, True])
@pytest.mark.parametrize("reps", [1e-4, 1e-1])
def test_matches_the_authors_package(layerwise, reps):
    """DoG (one distance and gradient sum per group) against the authors' ``dog.DoG``, L-DoG
    (one per tensor) against their ``dog.LDoG``, 15 steps of fixed gradients, float64."""
    authors = pytest.importorskip("dog")
    gen = torch.Generator().manual_seed(9)
    x0 = [torch.randn(3, 2, generator=gen, dtype=torch.float64),
          torch.randn(4, generator=gen, dtype=torch.float64)]
    trajectories = []
    for make in (lambda ps: DoG(ps, reps_rel=reps, eps=1e-8, layerwise=layerwise),
                 lambda ps: (authors.LDoG if layerwise else authors.DoG)(ps, reps_rel=reps,
                                                                           eps=1e-8)):
        ps = [x.clone().requires_grad_(True) for x in x0]
        opt, path = make(ps), []
        for gt in _grads():
            for p, g in zip(ps, gt):
                p.grad = g.clone()
            opt.step()
            path.append([p.detach().clone() for p in ps])
        trajectories.append(path)
    for ours, theirs in zip(*trajectories):
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_first_step_is_r_eps_over_grad_norm():
    x0 = torch.tensor([3.0, 4.0], dtype=torch.float64)
    p = x0.clone().requires_grad_(True)
    p.grad = torch.tensor([1.0, 2.0], dtype=torch.float64)
    DoG([p], reps_rel=1e-3, eps=0.0).step()
    eta0 = 1e-3 * (1 + 5.0) / math.sqrt(5.0)
    torch.testing.assert_close(p.detach(), x0 - eta0 * p.grad)
