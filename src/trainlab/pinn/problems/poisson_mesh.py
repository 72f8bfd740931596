r"""Poisson's equation on an unstructured triangular mesh, with a finite-element reference
from scikit-fem (the setting of papers.md row 75).

.. math::  -\Delta u = 1 \ \text{in } \Omega, \quad u = 0 \ \text{on } \partial\Omega,

with :math:`\Omega` the union of a mesh's triangles: scikit-fem's L-shaped domain
(``"lshaped"``, a re-entrant corner, so the solution has an :math:`r^{2/3}` singularity),
its disk (``"circle"``), or a mesh file (``.npz`` with arrays ``p`` (2, n) and ``t`` (3, m),
or any format meshio reads when it is installed). Collocation: points uniform in the domain
(a triangle drawn with probability proportional to its area, then uniform barycentric
coordinates) and uniform on its boundary (a boundary edge drawn by length); there is no
``sampling=`` choice (the box problems' Sobol sets need a box, not a mesh). The reference is
the quadratic (P2) Lagrange finite-element solution on the mesh refined ``refine`` times,
evaluated at any point by scikit-fem's ``probes``; its error floor is the distance to the
solution on the mesh refined ``refine + 1`` times (half the mesh size). Evaluation points:
the nodes of the mesh refined ``grid_refine`` times.

References:
    "Learning the Solution Operator of Boundary Value Problems using Graph Neural
    Networks" (papers.md row 75): Poisson BVPs on unstructured meshes with finite-element
    references. Gustafsson & McBain, "scikit-fem: A
    Python package for finite element assembly", JOSS 2020.

Deviations from the paper: one fixed BVP (unit load, homogeneous Dirichlet data) rather than
the paper's family of sources and boundary values; the operator-learning GNN is not here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trainlab.errors import ConfigError, check_range
from trainlab.pinn.derivatives import Jet
from trainlab.pinn.problems._problem import DTYPE, PROBLEMS, Problem, Term, check_count

MESHES = ("lshaped", "circle")


def load_mesh(mesh: str):
    """A scikit-fem ``MeshTri``: a built-in name of :data:`MESHES` or a file path (``.npz``
    with ``p`` and ``t``, else meshio); one-line :class:`ConfigError` otherwise."""
    from skfem import MeshTri

    if mesh == "lshaped":
        return MeshTri.init_lshaped()
    if mesh == "circle":
        return MeshTri.init_circle(2)
    path = Path(mesh)
    if not path.exists():
        raise ConfigError(f"mesh {mesh!r} is neither a built-in mesh ({', '.join(MESHES)}) "
                          "nor an existing file")
    try:
        if path.suffix == ".npz":
            with np.load(path) as data:
                p, t = np.asarray(data["p"], dtype=np.float64), np.asarray(data["t"])
            if p.ndim != 2 or p.shape[0] != 2 or t.ndim != 2 or t.shape[0] != 3:
                raise ValueError(f"p must be (2, n) and t (3, m); got {p.shape} and {t.shape}")
            if t.size and (t.min() < 0 or t.max() >= p.shape[1]):
                raise ValueError("t refers to points that do not exist")
            return MeshTri(p, t.astype(np.int64))
        return MeshTri.load(str(path))
    except (ValueError, KeyError, OSError, ImportError, IndexError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot read mesh file {path} ({reason}); expected .npz with "
                          "p (2, n) and t (3, m), or a format meshio reads") from None


def fem_solution(mesh, refine: int):
    """``(basis, dofs)`` of the P2 solution of ``-lap u = 1, u = 0`` on ``mesh`` refined
    ``refine`` times."""
    from skfem import Basis, ElementTriP2, asm, condense, solve
    from skfem.models.poisson import laplace, unit_load

    basis = Basis(mesh.refined(refine) if refine else mesh, ElementTriP2())
    u = solve(*condense(asm(laplace, basis), asm(unit_load, basis), D=basis.get_dofs()))
    return basis, u


def poisson_mesh(mesh: str = "lshaped", refine: int = 4, grid_refine: int = 3,
                 n_interior: int = 2000, n_boundary: int = 400) -> Problem:
    """Poisson on a scikit-fem mesh (see the module docstring)."""
    check_range("refine", refine, low=0, high=7, owner="poisson_mesh")
    check_range("grid_refine", grid_refine, low=0, high=7, owner="poisson_mesh")
    n_interior = check_count("n_interior", n_interior, "poisson_mesh")
    n_boundary = check_count("n_boundary", n_boundary, "poisson_mesh")
    base = load_mesh(mesh)
    tri = torch.as_tensor(base.p[:, base.t].transpose(2, 1, 0), dtype=DTYPE)  # (m, 3, 2)
    area = 0.5 * torch.abs((tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1])
                           - (tri[:, 2, 0] - tri[:, 0, 0]) * (tri[:, 1, 1] - tri[:, 0, 1]))
    if len(area) == 0 or float(area.sum()) <= 0:
        raise ConfigError(f"mesh {mesh!r} has no triangles of positive area")
    edges = torch.as_tensor(base.p[:, base.facets[:, base.boundary_facets()]].transpose(
        2, 1, 0), dtype=DTYPE)  # (k, 2, 2)
    length = (edges[:, 1] - edges[:, 0]).norm(dim=1)

    def inside(n: int, g: torch.Generator | None) -> torch.Tensor:
        k = torch.multinomial(area, n, replacement=True, generator=g)
        a, b = torch.rand(n, 1, generator=g, dtype=DTYPE), torch.rand(n, 1, generator=g,
                                                                     dtype=DTYPE)
        flip = (a + b) > 1
        a, b = torch.where(flip, 1 - a, a), torch.where(flip, 1 - b, b)
        t = tri[k]
        return t[:, 0] + a * (t[:, 1] - t[:, 0]) + b * (t[:, 2] - t[:, 0])

    def on_boundary(n: int, g: torch.Generator | None) -> torch.Tensor:
        k = torch.multinomial(length, n, replacement=True, generator=g)
        s = torch.rand(n, 1, generator=g, dtype=DTYPE)
        e = edges[k]
        return e[:, 0] + s * (e[:, 1] - e[:, 0])

    cache: dict[int, tuple] = {}

    def reference_at(level: int):
        def evaluate(x: torch.Tensor) -> torch.Tensor:
            if level not in cache:
                cache[level] = fem_solution(base, level)
            basis, u = cache[level]
            try:
                probes = basis.probes(x.detach().cpu().numpy().T)
            except ValueError as exc:
                raise ConfigError(f"poisson-mesh reference: {exc} (points on the boundary "
                                  "may fall outside by rounding)") from None
            return torch.as_tensor(probes @ u, dtype=x.dtype)[:, None]
        return evaluate

    def pde(j: Jet, x: torch.Tensor) -> torch.Tensor:
        return -j.laplacian() - 1.0

    terms = (Term("pde", inside, pde, 2, n_interior),
             Term("boundary", on_boundary, lambda j, x: j.u, 0, n_boundary))
    nodes = base.refined(grid_refine).p if grid_refine else base.p
    grid = torch.as_tensor(nodes.T.copy(), dtype=DTYPE)
    lower = tuple(float(v) for v in base.p.min(1))
    upper = tuple(float(v) for v in base.p.max(1))
    return Problem("poisson-mesh", ("x", "y"), lower, upper, 1, terms, reference_at(refine),
                   grid, (len(grid),), reference_at(refine + 1),
                   params={"mesh": mesh, "refine": refine})


PROBLEMS.register("poisson-mesh", poisson_mesh, papers=(75,),
                  summary="Poisson -lap u = 1 on an unstructured scikit-fem mesh, P2 FE reference")
