"""Curvature of the loss: linear operators (Hessian, GGN, Fisher) and solvers over them.

Operators (``trainlab.curvature.operators``) multiply flat vectors by a curvature matrix of
``(model, loss_fn, data)`` without forming it; solvers (``trainlab.curvature.solvers``) take
any symmetric :class:`LinearOperator` and a ``generator`` and return frozen results.
"""

from trainlab.curvature.hvp import flatten, loss_function, make_hvp, trainable_params, unflatten
from trainlab.curvature.operators import (
    CurvatureOperator,
    EmpiricalFisherOperator,
    GGNOperator,
    HessianOperator,
    LinearOperator,
    MatrixOperator,
    as_operator,
    parameter_groups,
)
from trainlab.curvature.operators.preconditioned import PreconditionedOperator
from trainlab.curvature.optimizer_sharpness import (
    PreconditionedSharpness,
    Preconditioner,
    optimizer_preconditioner,
    preconditioned_sharpness,
)
from trainlab.curvature.solvers import (
    EigenResult,
    Estimate,
    SpectralDensity,
    block_warm_top,
    frobenius_norm,
    hutchinson_trace,
    hutchpp_trace,
    lanczos,
    lanczos_quadrature,
    spectral_density,
    top_eigenvalue,
)
from trainlab.curvature.training_hessian import training_hessian

__all__ = [
    "CurvatureOperator", "EigenResult", "EmpiricalFisherOperator", "Estimate", "GGNOperator",
    "HessianOperator", "LinearOperator", "MatrixOperator", "PreconditionedOperator",
    "PreconditionedSharpness", "Preconditioner", "SpectralDensity",
    "as_operator", "block_warm_top", "flatten", "frobenius_norm", "hutchinson_trace",
    "hutchpp_trace",
    "lanczos", "lanczos_quadrature", "loss_function", "make_hvp", "optimizer_preconditioner",
    "parameter_groups", "preconditioned_sharpness", "spectral_density",
    "top_eigenvalue", "trainable_params", "training_hessian", "unflatten",
]
