"""DPNets (papers.md row 112) on the Ornstein-Uhlenbeck process: exact Hermite features reach
the VAMP-2 bound sum_n e^{-2 n theta dt} and the spectrum e^{-n theta dt}; the scores against
a whitened-SVD formula; a trained feature map approaches the bound."""

import math

import pytest
import torch
from torch import nn

from trainlab.optim.procedures import PROCEDURES
from trainlab.optim.procedures.kostic2024_dpnets import (
    covariances,
    dpnets_loss,
    fit_dpnets,
    metric_distortion,
    operator_eigenvalues,
    ou_pairs,
    ou_spectrum,
    projection_score,
    relaxed_score,
)

D = torch.float64


def _hermite(z):
    return torch.cat([z, z**2 - 1, z**3 - 3 * z], 1)


def test_exact_hermite_features_reach_the_spectrum():
    x, y = ou_pairs(200_000, generator=torch.Generator().manual_seed(0))
    bound = float(ou_spectrum(3).pow(2).sum())
    assert bound == pytest.approx(2.0379, abs=1e-4)
    assert float(projection_score(_hermite(x), _hermite(y))) == pytest.approx(bound, rel=0.01)
    ev = operator_eigenvalues(_hermite(x), _hermite(y))
    assert torch.allclose(ev.real, ou_spectrum(3), rtol=0.02) and float(ev.imag.abs().max()) == 0


def test_scores_against_whitened_svd_and_ordering():
    g = torch.Generator().manual_seed(1)
    fx = torch.randn(500, 4, generator=g, dtype=D) @ torch.randn(4, 4, generator=g, dtype=D)
    fy = 0.6 * fx + torch.randn(500, 4, generator=g, dtype=D)
    cx, cy, cxy = covariances(fx, fy)

    def inv_sqrt(c):
        lam, v = torch.linalg.eigh(c)
        return v @ torch.diag(lam**-0.5) @ v.T

    whitened = torch.linalg.svdvals(inv_sqrt(cx) @ cxy @ inv_sqrt(cy))
    p = projection_score(fx, fy)
    assert float(p) == pytest.approx(float((whitened**2).sum()), rel=1e-10)
    assert float(relaxed_score(fx, fy)) <= float(p) <= 4


def test_metric_distortion_vanishes_with_zero_gradient_at_identity():
    c = torch.eye(3, dtype=D, requires_grad=True)
    r = metric_distortion(c)
    (g,) = torch.autograd.grad(r, c)
    assert float(r.detach()) == 0.0 and float(g.abs().max()) < 1e-12
    assert float(metric_distortion(torch.diag(torch.tensor([0.5, 2.0], dtype=D)))) > 0


def test_trained_features_approach_the_vamp2_bound():
    g = torch.Generator().manual_seed(0)
    x, y = ou_pairs(2000, generator=g)
    net = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=D))
    with torch.no_grad():
        before = float(dpnets_loss(net(x), net(y)))
    fit = fit_dpnets(net, x, y, steps=300, lr=2e-2)
    assert float(fit.losses[-1]) < before
    xt, yt = ou_pairs(50_000, generator=g)
    with torch.no_grad():
        p = float(projection_score(net(xt), net(yt)))
        ev = operator_eigenvalues(net(xt), net(yt)).real
    bound = float(ou_spectrum(3).pow(2).sum())
    assert 0.9 * bound <= p <= 1.01 * bound
    assert float(ev[0]) == pytest.approx(math.exp(-0.1), rel=0.01)
    assert float(ev[1]) == pytest.approx(math.exp(-0.2), rel=0.03)


def test_registered_with_row_112():
    assert PROCEDURES.entry("dpnets").papers == (112,)
