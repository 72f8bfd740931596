"""The theory registry: each exact result with the papers.md rows it comes from, so that
``trainlab list theory`` and the papers coverage table show them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainlab import theory
from trainlab.registry import Registry
from trainlab.theory.garciatrillos2022_adversarial import boundary_path

THEORY: Registry[Callable[..., Any]] = Registry("theory")

THEORY.register("deep-linear-mode-strength", theory.mode_strength, papers=(1,),
                summary="closed-form sigmoidal mode strength u(t) of a deep linear network")
THEORY.register("deep-linear-learning-time", theory.learning_time, papers=(1,),
                summary="time for a mode to go from u0 to uf under gradient flow")
THEORY.register("deep-linear-depth-scaling", theory.learning_time_vs_depth, papers=(1,),
                summary="learning time against depth, orthogonal vs scaled-Gaussian init")
THEORY.register("linear-regression-test-error", theory.generalization_error, papers=(26,),
                summary="exact test error of linear regression under GD (Marchenko-Pastur)")
THEORY.register("linear-regression-train-error", theory.training_error, papers=(26,),
                summary="exact training error of linear regression under GD")
THEORY.register("mean-field-critical-sigma-w", theory.critical_sigma_w2, papers=(111, 3),
                summary="edge-of-chaos sigma_w^2 (chi_1 = 1) of an activation by mean field")
THEORY.register("bures-wasserstein-critical-points", theory.bures_wasserstein_critical_points,
                papers=(96,),
                summary="critical points of deep linear covariance factorization, BW loss")

THEORY.register("adversarial-boundary-ode", boundary_path, papers=(6,),
                summary="1-D optimal adversarial boundary b(eps) by an ODE from the Bayes boundary")

__all__ = ["THEORY"]
