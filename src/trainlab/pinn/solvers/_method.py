"""The linear-solver registry and the interface every entry implements.

An entry is a class: ``Solver(**params)`` then ``fit(train, generator=...)`` (a no-op for the
classical preconditioners; training for the learned ones) and ``solve(A, b, rtol=...,
maxiter=...) -> SolveResult``. A preconditioner for CG implements ``preconditioner(A)``
(``r -> M r``), and ``solve`` is PCG with it; a method with its own iteration (deep conjugate
directions, papers.md row 108) overrides ``solve``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from trainlab.errors import ConfigError
from trainlab.pinn.solvers.pcg import Apply, SolveResult, pcg
from trainlab.registry import EntryInfo, Registry


@dataclass(frozen=True)
class SolverInfo(EntryInfo):
    """``learned``: the method trains on the family before it can solve; ``family``: the
    problems it solves (``"poisson-2d"``: sparse SPD systems of
    :class:`~trainlab.pinn.solvers.poisson_family.PoissonFamily` through ``solve(A, b)``;
    ``"helmholtz-1d"``: the parametric 1-D Helmholtz family of papers.md row 4)."""

    learned: bool = False
    family: Literal["poisson-2d", "helmholtz-1d"] = "poisson-2d"


SOLVERS: Registry[type[LinearSolver]] = Registry("solver", info=SolverInfo)


class LinearSolver:
    """A solver of SPD systems ``A x = b`` from a :class:`PoissonFamily`-like family."""

    learned = False

    def __init__(self, **params: Any):
        if params:
            raise ConfigError(f"{type(self).__name__} takes no parameters; got "
                              f"{', '.join(sorted(params))}")
        self.setup_seconds = 0.0

    def fit(self, train: list, *, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Train on the family's training instances; returns a training log (empty here)."""
        del train, generator
        return {}

    def preconditioner(self, A: sp.spmatrix) -> Apply | None:
        """The preconditioner for ``A`` (None: plain CG); every registered solver defines it."""
        raise NotImplementedError(f"{type(self).__name__} defines no preconditioner()")

    def solve(self, A: sp.spmatrix, b: np.ndarray, *, rtol: float = 1e-8,
              maxiter: int | None = None) -> SolveResult:
        """PCG with :meth:`preconditioner`; the preconditioner's setup time is kept in
        ``self.setup_seconds``."""
        start = time.perf_counter()
        M = self.preconditioner(A)
        self.setup_seconds = time.perf_counter() - start
        return pcg(A, b, M, rtol=rtol, maxiter=maxiter)


def build_solver(name: str, **params: Any) -> LinearSolver:
    """The registered solver ``name`` built with ``params`` (unknown names and parameters
    raise one-line errors)."""
    cls = SOLVERS.get(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"solver {name!r}: {exc}") from None
