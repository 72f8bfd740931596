"""The adversarial boundary ODE (papers.md row 6) against the two-Gaussian closed form and a
brute-force minimisation of the adversarial risk."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.stats import norm

from trainlab.errors import ConfigError
from trainlab.theory.catalog import THEORY
from trainlab.theory.garciatrillos2022_adversarial import (
    adversarial_risk,
    boundary_path,
    gaussian_boundary,
    gaussian_densities,
)

W, MU, S = (0.4, 0.6), (-1.0, 1.0), 1.0
EPS = np.array([0.0, 0.2, 0.4, 0.6])


def test_ode_matches_closed_form():
    r0, r1, d0, d1 = gaussian_densities(W, MU, S)
    closed = gaussian_boundary(EPS, weights=W, means=MU, scale=S)
    assert np.allclose(closed, [-0.20273, -0.25342, -0.33789, -0.50683], atol=1e-5)
    assert np.allclose(boundary_path(d0, d1, float(closed[0]), EPS), closed, atol=1e-6)


def _risk_cdf(b, e):
    # the same risk written with Gaussian CDFs (independent of the quadrature)
    return W[0] * norm.sf((b - e - MU[0]) / S) + W[1] * norm.cdf((b + e - MU[1]) / S)


def test_ode_matches_brute_force_risk_minimisation():
    r0, r1, d0, d1 = gaussian_densities(W, MU, S)
    path = boundary_path(d0, d1, float(gaussian_boundary(0.0, weights=W, means=MU, scale=S)),
                         EPS)
    grid = np.linspace(-3, 3, 6001)
    for e, b in zip(EPS, path):
        coarse = grid[np.argmin(_risk_cdf(grid, e))]
        best = minimize_scalar(lambda v, e=e: _risk_cdf(v, e),
                               bounds=(coarse - 0.002, coarse + 0.002), method="bounded",
                               options={"xatol": 1e-10}).x
        assert best == pytest.approx(b, abs=1e-5)
        assert adversarial_risk(r0, r1, b, e) == pytest.approx(_risk_cdf(b, e), abs=1e-9)
    risk = adversarial_risk(r0, r1, float(path[-1]), 0.6)
    assert risk == pytest.approx(0.326, abs=1e-3) and risk < 0.4  # below "always class 1"


def test_equal_weights_keep_the_midpoint_and_errors():
    assert np.allclose(gaussian_boundary(EPS, weights=(0.5, 0.5), means=MU, scale=S), 0.0)
    with pytest.raises(ConfigError, match="Delta/2"):
        gaussian_boundary(1.0, weights=W, means=MU, scale=S)
    with pytest.raises(ConfigError, match="increasing"):
        boundary_path(lambda x: 0.0, lambda x: 0.0, 0.0, np.array([0.2, 0.1]))
    assert THEORY.entry("adversarial-boundary-ode").papers == (6,)
