"""Dexter et al.'s Hessian coherence (row 70): the construction whose coherence is the integer
it is built with, a float64 reference from the definition with matrix square roots, and the
link to SGD's stability at a fixed sharpness."""

from __future__ import annotations

import pytest
import torch

from trainlab.analyses import ANALYSES, critical_lr, hessian_coherence
from trainlab.errors import ConfigError


def _shared_direction(n: int, k: int) -> torch.Tensor:
    """n rank-one Hessians: the first k share e_0, the others each own a direction; scaled
    so that the mean Hessian has lambda_1 = 2 whatever k."""
    d = n - k + 1
    hs = torch.zeros(n, d, d, dtype=torch.float64)
    for i in range(n):
        j = 0 if i < k else i - k + 1
        hs[i, j, j] = 2 * n / k
    return hs


@pytest.mark.parametrize("k", [1, 3, 8])
def test_coherence_of_the_shared_direction_construction_is_k(k):
    assert hessian_coherence(_shared_direction(8, k)) == pytest.approx(k, rel=1e-12)


def _psd_sqrt(h):
    ev, vec = torch.linalg.eigh(h)
    return vec @ torch.diag(ev.clamp_min(0).sqrt()) @ vec.T


def test_matches_the_definition_with_matrix_square_roots():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(6, 4, 2, generator=gen, dtype=torch.float64)
    hs = a @ a.transpose(1, 2)  # rank-2 PSD Hessians in R^4
    roots = [_psd_sqrt(h) for h in hs]
    s = torch.tensor([[float(torch.linalg.matrix_norm(ri @ rj)) for rj in roots]
                      for ri in roots], dtype=torch.float64)
    top = max(float(torch.linalg.eigvalsh(h)[-1]) for h in hs)
    ref = float(torch.linalg.eigvalsh(s)[-1]) / top
    assert hessian_coherence(hs) == pytest.approx(ref, rel=1e-10)
    assert ANALYSES.entry("hessian-coherence").papers == (70,)


def test_less_coherent_curvature_is_less_stable_under_sgd_at_equal_sharpness():
    # every construction has lambda_1(mean H) = 2, so gradient descent's limit is lr = 1;
    # SGD's exact critical lr falls with the coherence (Dexter et al.'s point)
    lrs = {k: critical_lr(_shared_direction(8, k), batch_size=2) for k in (1, 2, 4, 8)}
    assert lrs[8] == pytest.approx(1.0, rel=1e-5)
    assert lrs[1] < lrs[2] < lrs[4] < lrs[8]
    assert lrs[1] < 0.5


def test_rejects_indefinite_or_misshaped_hessians():
    with pytest.raises(ConfigError, match="positive semi-definite"):
        hessian_coherence(torch.diag(torch.tensor([1.0, -1.0]))[None])
    with pytest.raises(ConfigError, match="expected"):
        hessian_coherence(torch.ones(3, 2, 4))
