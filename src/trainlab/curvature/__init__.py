"""Curvature of the loss: Hessian-vector products and eigen-solvers over them."""

from trainlab.curvature.hvp import flatten, loss_function, make_hvp, trainable_params, unflatten
from trainlab.curvature.power import TopEigen, top_eigenvalue

__all__ = ["TopEigen", "flatten", "loss_function", "make_hvp", "top_eigenvalue",
           "trainable_params", "unflatten"]
