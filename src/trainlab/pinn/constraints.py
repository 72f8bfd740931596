r"""Soft and hard (output-transform) boundary and initial conditions.

*Soft*: every condition is a penalty term of the loss,
:math:`L = \sum_t \lambda_t \, \mathrm{mean}_{x \in X_t} |r_t(x)|^2 / 2`, with weights
:math:`\lambda_t` (1 by default).

*Hard*: the network's output is transformed so that the conditions hold exactly,

.. math::  u(x) = g(x) + d(x)\, N(x),

with :math:`d` vanishing on the constrained set (boundary and/or initial slice) and positive
elsewhere, and :math:`g` equal to the prescribed values there; the loss keeps only the PDE
term. This is the output transform of "Solving Navier-Stokes with Data-free PINNs and Hard
Boundary Conditions" (papers.md row 86) for Dirichlet data, and the exact-initial-condition
parametrisation :math:`u_0 + (1 - e^{-t}) N(t)` of papers.md row 13 for the ODE problems.

Deviations from the paper: row 86 builds :math:`d` and :math:`g` for general geometries
(approximate distance functions); here each problem supplies closed-form ``distance`` and
``boundary_value`` for its box domain.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from trainlab.errors import ConfigError, UnknownNameError, check_choice, check_range
from trainlab.pinn.problems import Problem

CONSTRAINTS = ("soft", "hard")


def check_constraint(problem: Problem, constraint: str) -> str:
    """``constraint`` must be ``"soft"`` or ``"hard"``, and hard needs the problem's
    ``distance`` and ``boundary_value``."""
    check_choice("constraint", constraint, CONSTRAINTS, owner=f"pinn task {problem.name!r}")
    if constraint == "hard" and (problem.distance is None or problem.boundary_value is None):
        raise ConfigError(f"problem {problem.name!r} offers no hard constraint; use "
                          "constraint='soft'")
    return constraint


def hard_output(problem: Problem, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
    """``g(x) + d(x) * raw``: the network output ``raw`` with the conditions imposed."""
    assert problem.distance is not None and problem.boundary_value is not None
    return problem.boundary_value(x) + problem.distance(x) * raw


def active_terms(problem: Problem, constraint: str) -> tuple[str, ...]:
    """The loss terms left: all of them (soft), only the PDE (hard)."""
    return tuple(t.name for t in problem.terms if constraint == "soft" or t.name == "pde")


def term_weights(problem: Problem, constraint: str,
                 weights: Mapping[str, float] | str | None) -> dict[str, float]:
    """``{term: lambda_t}`` for the active terms; ``weights`` overrides some (a mapping or a
    ``"boundary=10,initial=10"`` string); unknown or inactive terms raise."""
    names = active_terms(problem, constraint)
    out = dict.fromkeys(names, 1.0)
    if isinstance(weights, str):
        try:
            weights = {k.strip(): float(v) for k, v in
                       (item.split("=") for item in weights.split(",") if item.strip())}
        except ValueError:
            raise ConfigError(f"weights must look like 'boundary=10,initial=1'; got "
                              f"{weights!r}") from None
    for name, value in (weights or {}).items():
        if name not in out:
            raise UnknownNameError(f"active loss term of {problem.name!r}", name, names)
        out[name] = float(check_range(f"weights[{name}]", value, low=0.0, owner="pinn task"))
    return out
