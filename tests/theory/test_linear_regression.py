"""Advani-Saxe linear-regression dynamics against Monte Carlo gradient descent and against
large-N empirical spectra."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from trainlab.errors import ConfigError
from trainlab.theory import (
    generalization_error,
    marchenko_pastur,
    marchenko_pastur_density,
    optimal_stopping,
    ridge_generalization_error,
    training_error,
)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 2.5])
def test_marchenko_pastur_mass_and_mean(alpha):
    lo, hi = (1 - np.sqrt(alpha)) ** 2, (1 + np.sqrt(alpha)) ** 2
    mass, _ = quad(lambda x: marchenko_pastur_density(x, alpha), lo, hi, limit=200)
    mean, _ = quad(lambda x: x * marchenko_pastur_density(x, alpha), lo, hi, limit=200)
    assert mass == pytest.approx(min(1.0, alpha), abs=1e-6)
    assert mean == pytest.approx(alpha, abs=1e-6)  # E[lambda] = tr(X^T X)/N = P/N
    spec = marchenko_pastur(alpha)
    assert spec.weights.sum() == pytest.approx(min(1.0, alpha), rel=1e-9)
    assert spec.weights @ spec.values == pytest.approx(alpha, rel=1e-9)


def _simulate(x, lr, steps, teacher_var, noise_var, init_var, draws, rng):
    """Gradient descent on 0.5 ||y - X w||^2 for many teacher/noise/init draws at once;
    returns the mean test error (||w - wbar||^2/N + noise) and train error at every step."""
    p, n = x.shape
    wbar = rng.normal(0, np.sqrt(teacher_var), (n, draws))
    y = x @ wbar + rng.normal(0, np.sqrt(noise_var), (p, draws))
    w = rng.normal(0, np.sqrt(init_var), (n, draws))
    test, train = [], []
    for _ in range(steps + 1):
        r = y - x @ w
        test.append(((w - wbar) ** 2).sum(0).mean() / n + noise_var)
        train.append((r**2).sum(0).mean() / p)
        w = w + lr * x.T @ r
    return np.array(test), np.array(train)


@pytest.mark.parametrize("p", [20, 40, 80])
def test_finite_n_formula_matches_gradient_descent(p):
    rng = np.random.default_rng(p)
    n, lr, steps = 40, 0.2, 60
    x = rng.normal(0, 1 / np.sqrt(n), (p, n))
    ev = np.linalg.eigvalsh(x.T @ x)
    kw = dict(eigenvalues=ev, num_samples=p, teacher_var=1.0, noise_var=0.3, init_var=0.2,
              lr=lr)
    sim_test, sim_train = _simulate(x, lr, steps, 1.0, 0.3, 0.2, 6000, rng)
    t = np.arange(steps + 1)
    # Monte Carlo over 6000 draws: relative standard error about 1%; 4% is ~4 sigma.
    np.testing.assert_allclose(generalization_error(t, **kw), sim_test, rtol=0.04)
    np.testing.assert_allclose(training_error(t, **kw), sim_train, rtol=0.04)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_marchenko_pastur_theory_matches_large_n(alpha):
    rng = np.random.default_rng(1)
    n = 800
    p = int(alpha * n)
    x = rng.normal(0, 1 / np.sqrt(n), (p, n))
    ev = np.linalg.eigvalsh(x.T @ x)
    t = np.array([0.0, 1.0, 5.0, 50.0, 1e4])
    kw = dict(teacher_var=1.0, noise_var=0.25)
    np.testing.assert_allclose(generalization_error(t, alpha=alpha, **kw),
                               generalization_error(t, eigenvalues=ev, num_samples=p, **kw),
                               rtol=0.02)
    np.testing.assert_allclose(training_error(t, alpha=alpha, **kw),
                               training_error(t, eigenvalues=ev, num_samples=p, **kw), rtol=0.02,
                               atol=1e-3)


def test_converged_limits_and_peak():
    # closed forms of the converged error: alpha<1: (1-a) + s2 a/(1-a) + s2; alpha>1: s2/(a-1)+s2
    for a in (0.5, 0.8):
        assert generalization_error(1e7, alpha=a, noise_var=0.25)[0] == pytest.approx(
            (1 - a) + 0.25 * a / (1 - a) + 0.25, rel=1e-3)
    for a in (1.5, 3.0):
        assert generalization_error(1e7, alpha=a, noise_var=0.25)[0] == pytest.approx(
            0.25 / (a - 1) + 0.25, rel=1e-3)
    peak = generalization_error(1e5, alpha=1.0, noise_var=0.25)[0]
    assert peak > 10 * generalization_error(1e5, alpha=0.5, noise_var=0.25)[0]
    _, early = optimal_stopping(np.geomspace(0.01, 1e5, 400), alpha=1.0, noise_var=0.25)
    assert early < 1.0


def test_ridge_matches_direct_solution():
    rng = np.random.default_rng(2)
    n, p, gamma = 30, 45, 0.4
    x = rng.normal(0, 1 / np.sqrt(n), (p, n))
    draws = 20000
    wbar = rng.normal(0, 1, (n, draws))
    y = x @ wbar + rng.normal(0, 0.5, (p, draws))
    w = np.linalg.solve(x.T @ x + gamma * np.eye(n), x.T @ y)
    sim = ((w - wbar) ** 2).sum(0).mean() / n + 0.25
    ev = np.linalg.eigvalsh(x.T @ x)
    assert ridge_generalization_error(gamma, eigenvalues=ev, num_samples=p, noise_var=0.25) \
        == pytest.approx(sim, rel=0.02)


def test_bad_arguments_raise():
    with pytest.raises(ConfigError, match="exactly one"):
        generalization_error(1.0)
    with pytest.raises(ConfigError, match="diverge"):
        generalization_error(1.0, alpha=1.0, lr=1.0)
    with pytest.raises(ConfigError, match="alpha"):
        marchenko_pastur(-1.0)
