"""k-NN gradient estimates (row 67): exact for a linear function, error shrinking with the
sample size on a known nonlinear function, and the Lasso version zeroing irrelevant
coordinates."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim.estimators import knn_gradient


def m(x):
    return torch.sin(2 * x[..., 0]) + x[..., 1] ** 2


def grad_m(x):
    return torch.stack([2 * torch.cos(2 * x[..., 0]), 2 * x[..., 1]], dim=-1)


def _sample(n, gen, noise=0.1, d=2):
    x = 2 * torch.rand(n, d, generator=gen, dtype=torch.float64) - 1
    return x, m(x) + noise * torch.randn(n, generator=gen, dtype=torch.float64)


def test_exact_on_a_noiseless_linear_function():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    slope = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    est = knn_gradient(x, x @ slope + 3.0, torch.zeros(2, 3, dtype=torch.float64), k=10)
    torch.testing.assert_close(est, slope.expand(2, 3))


def test_error_decreases_with_sample_size():
    gen = torch.Generator().manual_seed(1)
    queries = 0.6 * (2 * torch.rand(40, 2, generator=gen, dtype=torch.float64) - 1)
    errors = []
    for n in (200, 2000, 20000):
        x, y = _sample(n, gen)
        k = int(2 * n ** (4 / 6))  # k ~ n^{4/(d+4)}
        est = knn_gradient(x, y, queries, k=k)
        errors.append(float(((est - grad_m(queries)) ** 2).sum(-1).mean()))
    assert errors[1] < 0.6 * errors[0] and errors[2] < 0.6 * errors[1], errors


def test_lasso_zeroes_irrelevant_coordinates():
    gen = torch.Generator().manual_seed(2)
    x = 2 * torch.rand(20000, 10, generator=gen, dtype=torch.float64) - 1
    y = m(x) + 0.05 * torch.randn(20000, generator=gen, dtype=torch.float64)
    q = torch.tensor([0.2, 0.3] + [0.0] * 8, dtype=torch.float64)
    est = knn_gradient(x, y, q, k=400, l1=0.01)
    ols = knn_gradient(x, y, q, k=400)
    assert int((est[2:] == 0).sum()) >= 6 and int((ols[2:] == 0).sum()) == 0
    assert est[2:].abs().max() < 0.01
    # the Lasso solution itself, against scikit-learn's coordinate descent on the same k
    # neighbours: ours minimizes (1/k)||r||^2 + l1|b|_1, sklearn (1/2k)||r||^2 + alpha|b|_1
    from sklearn.linear_model import Lasso

    nn = torch.cdist(q[None], x)[0].topk(400, largest=False).indices
    ref = Lasso(alpha=0.01 / 2, fit_intercept=True, tol=1e-12, max_iter=100000).fit(
        (x[nn] - q).numpy(), y[nn].numpy()).coef_
    tight = knn_gradient(x, y, q, k=400, l1=0.01, lasso_iters=20000)
    torch.testing.assert_close(tight, torch.as_tensor(ref), atol=1e-6, rtol=0)
    # 500 ISTA iterations (the default) are already close to the minimizer
    torch.testing.assert_close(est, tight, atol=2e-3, rtol=0)
    with pytest.raises(ConfigError, match="'k'"):
        knn_gradient(x, y, q, k=5)
