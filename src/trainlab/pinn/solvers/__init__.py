"""Learned and classical solvers of the sparse SPD systems of a random-coefficient Poisson
family (papers.md rows 59 and 108), beside Jacobi, IC(0) and pyamg's AMG, with a common PCG;
and a physics-informed learned iterative solver over a PDE-parameter family (row 4)."""

from trainlab.pinn.solvers import (  # noqa: F401  (registration)
    classical,
    kaneda2023_dcdm,
    leboudec2025_neural_solver,
    li2023_neural_pcg,
)
from trainlab.pinn.solvers._method import SOLVERS, LinearSolver, SolverInfo, build_solver
from trainlab.pinn.solvers.pcg import SolveResult, pcg
from trainlab.pinn.solvers.poisson_family import Instance, PoissonFamily

__all__ = ["SOLVERS", "Instance", "LinearSolver", "PoissonFamily", "SolveResult", "SolverInfo",
           "build_solver", "pcg"]
