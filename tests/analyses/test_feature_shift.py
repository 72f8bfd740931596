"""Feature shift detection (papers.md row 84): the exact Gaussian statistic against the
equicorrelated closed form and a Monte Carlo of autograd scores through torch's
MultivariateNormal (the paper's route), then detection/localisation rates on planted shifts."""

import pytest
import torch

from trainlab.analyses import ANALYSES
from trainlab.analyses.feature_shift import (
    detect_feature_shift,
    gaussian_score_divergence,
    score_statistic,
)

D = torch.float64


def _equicorrelated(d=5, rho=0.5, broken=None):
    cov = torch.full((d, d), rho, dtype=D)
    cov.fill_diagonal_(1.0)
    if broken is not None:  # permuting a column keeps its marginal, breaks its correlations
        cov[broken, :] = 0.0
        cov[:, broken] = 0.0
        cov[broken, broken] = 1.0
    return cov


def test_equicorrelated_closed_form():
    zero = torch.zeros(5, dtype=D)
    gamma = gaussian_score_divergence(zero, _equicorrelated(), zero, _equicorrelated(broken=2))
    assert torch.allclose(gamma, torch.tensor([1, 1, 10, 1, 1], dtype=D) / 9, atol=1e-12)


def test_exact_expectation_matches_monte_carlo_of_autograd_scores():
    g = torch.Generator().manual_seed(0)
    mu_p, mu_q = torch.tensor([0.0, 1.0, -0.5], dtype=D), torch.tensor([0.3, 0.0, 0.0], dtype=D)
    cp = torch.tensor([[1.0, 0.3, 0.0], [0.3, 2.0, 0.5], [0.0, 0.5, 1.5]], dtype=D)
    cq = torch.tensor([[1.5, 0.0, 0.2], [0.0, 1.0, 0.0], [0.2, 0.0, 0.8]], dtype=D)
    p = torch.distributions.MultivariateNormal(mu_p, cp)
    q = torch.distributions.MultivariateNormal(mu_q, cq)
    n = 100_000
    z = torch.randn(2 * n, 3, generator=g, dtype=D)
    x = torch.cat([mu_p + z[:n] @ torch.linalg.cholesky(cp).T,
                   mu_q + z[n:] @ torch.linalg.cholesky(cq).T]).requires_grad_(True)
    (s,) = torch.autograd.grad((p.log_prob(x) - q.log_prob(x)).sum(), x)
    mc, se = (s**2).mean(0), (s**2).std(0) / (2 * n) ** 0.5
    exact = gaussian_score_divergence(mu_p, cp, mu_q, cq)
    assert torch.all((mc - exact).abs() < 4 * se)


def _sample(n, cov, g):
    return torch.randn(n, cov.shape[0], generator=g, dtype=D) @ torch.linalg.cholesky(cov).T


def test_detection_and_localisation_of_a_permuted_feature():
    g = torch.Generator().manual_seed(1)
    cov = _equicorrelated()
    hits, found, false_alarms = 0, 0, 0
    trials = 20
    for t in range(trials):
        ref, query = _sample(1000, cov, g), _sample(1000, cov, g)
        null_run = detect_feature_shift(ref, query, bootstraps=250, generator=g)
        false_alarms += null_run.detected
        j = t % 5
        query = query.clone()
        query[:, j] = query[torch.randperm(1000, generator=g), j]
        run = detect_feature_shift(ref, query, bootstraps=250, generator=g)
        found += run.detected
        hits += run.localized == [j]
    assert hits / trials >= 0.9 and found / trials >= 0.9
    assert false_alarms / trials <= 0.05 + 2 * (0.05 * 0.95 / trials) ** 0.5


def test_shapes_are_checked_and_registered():
    with pytest.raises(Exception, match="same d"):
        score_statistic(torch.zeros(4, 2, dtype=D), torch.zeros(4, 3, dtype=D))
    assert ANALYSES.entry("feature-shift").papers == (84,)
