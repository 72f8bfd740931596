"""Solvers over symmetric linear operators: eigenpairs, traces, spectral densities."""

from trainlab.curvature.solvers.lanczos import lanczos
from trainlab.curvature.solvers.results import EigenResult, Estimate

__all__ = ["EigenResult", "Estimate", "lanczos"]
