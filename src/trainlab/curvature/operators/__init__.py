"""Linear operators over (model, loss, data): Hessian, GGN, empirical Fisher, preconditioned."""

from trainlab.curvature.operators._curvature import CurvatureOperator, parameter_groups
from trainlab.curvature.operators._linear import LinearOperator, MatrixOperator, as_operator
from trainlab.curvature.operators.fisher import EmpiricalFisherOperator
from trainlab.curvature.operators.ggn import GGNOperator
from trainlab.curvature.operators.hessian import HessianOperator
from trainlab.curvature.operators.preconditioned import PreconditionedOperator

__all__ = ["CurvatureOperator", "EmpiricalFisherOperator", "GGNOperator", "HessianOperator",
           "LinearOperator", "MatrixOperator", "PreconditionedOperator", "as_operator",
           "parameter_groups"]
