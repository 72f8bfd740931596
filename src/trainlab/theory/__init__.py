"""Exact theory of training dynamics: deep linear networks (Saxe et al. 2014, row 1), linear
regression under gradient descent (Advani, Saxe & Sompolinsky 2020, row 26), mean-field
signal propagation (re-exported from :mod:`trainlab.init.mean_field`, which owns the solver)
and the critical points of Bures-Wasserstein covariance factorization (Bréchet et al. 2023,
row 96); the t-product algebra of tubal tensor factorizations (row 23)."""

from trainlab.init.mean_field import (
    MeanFieldPoint,
    chi1,
    critical_sigma_w2,
    length_map,
    mean_field_point,
    q_fixed_point,
)
from trainlab.theory.bures_wasserstein import (
    CriticalPoint,
    bures_wasserstein_critical_points,
    bures_wasserstein_loss,
    bures_wasserstein_minimum,
)
from trainlab.theory.deep_linear import (
    deep_learning_time,
    deep_mode_strength,
    learning_time,
    learning_time_vs_depth,
    mode_strength,
    mode_strength_discrete,
)
from trainlab.theory.linear_regression import (
    Spectrum,
    empirical_spectrum,
    generalization_error,
    marchenko_pastur,
    marchenko_pastur_density,
    optimal_stopping,
    ridge_generalization_error,
    training_error,
)
from trainlab.theory.tubal import t_gram, t_identity, t_product, t_transpose, tubal_rank

__all__ = [
    "CriticalPoint", "MeanFieldPoint", "Spectrum", "bures_wasserstein_critical_points",
    "bures_wasserstein_loss", "bures_wasserstein_minimum", "chi1", "critical_sigma_w2",
    "deep_learning_time",
    "deep_mode_strength", "empirical_spectrum", "generalization_error", "learning_time",
    "learning_time_vs_depth", "length_map", "marchenko_pastur", "marchenko_pastur_density",
    "mean_field_point", "mode_strength", "mode_strength_discrete", "optimal_stopping",
    "q_fixed_point", "ridge_generalization_error", "training_error",
    "t_gram", "t_identity", "t_product", "t_transpose", "tubal_rank",
]
