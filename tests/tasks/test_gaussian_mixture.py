"""The ``gaussian-mixture`` task: class-conditional means and covariances match the model
(within CLT bounds), labels balanced, split sizes, determinism and argument errors."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.tasks import TASKS, build_task
from trainlab.tasks.gaussian_mixture import gaussian_mixture


def test_class_statistics_match_the_mixture():
    t = build_task("gaussian-mixture", dim=5, classes=3, spread=2.0, n_train=3000, n_test=600,
                   data_seed=1)
    x = torch.cat([t.x_train, t.x_test]).double()
    y = torch.cat([t.y_train, t.y_test])
    means = t.info["means"].double()
    assert t.x_train.shape == (3000, 5) and t.x_test.shape == (600, 5)
    assert t.y_train.dtype == torch.long and t.num_outputs == 3 and t.kind == "classification"
    for c in range(3):
        xc = x[y == c]
        assert len(xc) == 1200  # balanced: arange(n) % classes, shuffled
        # mean within 5 standard errors of the drawn class mean; covariance near identity
        assert (xc.mean(0) - means[c]).abs().max() < 5 / math.sqrt(len(xc))
        cov = torch.cov(xc.T)
        assert (cov - torch.eye(5, dtype=torch.float64)).abs().max() < 5 * math.sqrt(2 / len(xc))


def test_sampler_is_the_task_source_and_deterministic():
    g = torch.Generator().manual_seed(7)
    x, y = gaussian_mixture(50, 4, 5, spread=0.5, generator=g)
    t = build_task("gaussian-mixture", dim=4, classes=5, spread=0.5, n_train=30, n_test=20,
                   data_seed=7)
    assert torch.equal(torch.cat([t.x_train, t.x_test]), x)
    assert torch.equal(torch.cat([t.y_train, t.y_test]), y)
    assert torch.equal(gaussian_mixture(50, 4, 5, spread=0.5,
                                        generator=torch.Generator().manual_seed(7))[0], x)
    assert not torch.equal(build_task("gaussian-mixture", data_seed=8).x_train,
                           build_task("gaussian-mixture", data_seed=9).x_train)


def test_spread_separates_the_classes():
    # nearest-true-mean classifier: near chance for a tiny spread, near perfect for a large one
    def accuracy(spread):
        t = build_task("gaussian-mixture", dim=10, classes=4, spread=spread, n_train=10,
                       n_test=2000, data_seed=0)
        pred = torch.cdist(t.x_test, t.info["means"]).argmin(1)
        return (pred == t.y_test).float().mean().item()

    assert accuracy(0.01) < 0.4 and accuracy(5.0) > 0.99


def test_registered_with_rows_and_errors():
    assert set(TASKS.entry("gaussian-mixture").papers) >= {8, 28}
    with pytest.raises(ConfigError, match="classes"):
        build_task("gaussian-mixture", classes=1)
    with pytest.raises(ConfigError, match="spread"):
        gaussian_mixture(10, 2, 2, spread=0.0)
    with pytest.raises(ConfigError, match="n_test"):
        build_task("gaussian-mixture", n_test=0)
