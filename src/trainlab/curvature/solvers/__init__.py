"""Solvers over symmetric linear operators: eigenpairs (Lanczos, power iteration), traces,
norms, spectral densities."""

from trainlab.curvature.solvers.block_warm import block_warm_top, ritz_expansion
from trainlab.curvature.solvers.density import (
    SpectralDensity,
    lanczos_quadrature,
    spectral_density,
)
from trainlab.curvature.solvers.frobenius import frobenius_norm
from trainlab.curvature.solvers.lanczos import lanczos
from trainlab.curvature.solvers.power import top_eigenvalue
from trainlab.curvature.solvers.results import EigenResult, Estimate
from trainlab.curvature.solvers.trace import hutchinson_trace, hutchpp_trace

__all__ = ["EigenResult", "Estimate", "SpectralDensity", "block_warm_top", "frobenius_norm",
           "hutchinson_trace", "hutchpp_trace", "lanczos", "lanczos_quadrature", "ritz_expansion",
           "spectral_density", "top_eigenvalue"]
