"""PDE and ODE problems with trusted references and measured error floors."""

from trainlab.pinn.problems import (  # noqa: F401  (registration)
    advection,
    advection_lagrangian,
    allen_cahn,
    burgers,
    heat,
    heat2d,
    kovasznay,
    level_set_circle,
    ode_ivp,
    poisson,
    poisson_mesh,
)
from trainlab.pinn.problems._problem import PROBLEMS, Problem, Term, build_problem

__all__ = ["PROBLEMS", "Problem", "Term", "build_problem"]
