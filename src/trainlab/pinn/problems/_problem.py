"""The :class:`Problem` bundle (PDE residual, domain, conditions, collocation, evaluation
grid, reference solution and its measured error floor) and the problem registry."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from trainlab.errors import check_range
from trainlab.pinn.derivatives import Jet
from trainlab.registry import Registry

Sampler = Callable[[int, "torch.Generator | None"], torch.Tensor]
Residual = Callable[[Jet, torch.Tensor], torch.Tensor]
DTYPE = torch.float64


@dataclass(frozen=True)
class Term:
    """One term of a physics-informed loss: the PDE in the interior, or a boundary/initial
    condition.

    Attributes:
        name: ``"pde"``, ``"boundary"``, ``"initial"``, ...
        sample: ``sample(n, generator) -> (n', d)`` points where the term is imposed
            (``n' = n`` for random sampling; a grid sampler may round ``n``).
        residual: ``residual(jet, x) -> (n, r)``, zero for the exact solution.
        order: the highest input derivative the residual reads (0, 1 or 2).
        count: the default number of collocation points.
    """

    name: str
    sample: Sampler
    residual: Residual
    order: int
    count: int


@dataclass(frozen=True)
class Problem:
    """A PDE (or ODE) problem with a trusted reference solution.

    Attributes:
        name: registry name.
        coords: coordinate names, time first for evolution problems (``("t", "x")``).
        lower, upper: the box containing the domain.
        outputs: number of solution components.
        terms: the loss terms, the PDE first.
        reference: ``reference(x) -> (n, outputs)``, the solution at points ``x``.
        grid: the evaluation points ``(n, d)`` (a tensor product grid for box domains, with
            ``grid_shape`` its shape).
        grid_shape: shape of the evaluation grid (coordinates in ``coords`` order).
        refined: the reference computed at twice the resolution (None for closed forms);
            :meth:`error_floor` is the relative L2 distance between the two on the grid.
        params: the parameters the problem was built with.
        boundary_value: for hard constraints, ``g(x)`` such that the solution equals ``g``
            where ``distance(x) = 0`` (row 86 output transform); None when not offered.
        distance: a function vanishing exactly on the constrained boundary (and positive
            inside); None when not offered.
        conserved: ``conserved(u_grid) -> (n_t,)``, a quantity the exact solution conserves
            (e.g. energy for the oscillators, mass for periodic advection), or None.
        periodic: ``{coordinate index: period}`` of coordinates in which the solution is
            periodic; the model makes periodicity exact by feeding the network
            ``cos``/``sin`` of those coordinates (see :class:`trainlab.pinn.model.PinnModel`).
    """

    name: str
    coords: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    outputs: int
    terms: tuple[Term, ...]
    reference: Callable[[torch.Tensor], torch.Tensor]
    grid: torch.Tensor
    grid_shape: tuple[int, ...]
    refined: Callable[[torch.Tensor], torch.Tensor] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    boundary_value: Callable[[torch.Tensor], torch.Tensor] | None = None
    distance: Callable[[torch.Tensor], torch.Tensor] | None = None
    conserved: Callable[[torch.Tensor], torch.Tensor] | None = None
    periodic: dict[int, float] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return len(self.coords)

    @property
    def network_inputs(self) -> int:
        """Inputs of the network: the coordinates, a periodic one counting twice."""
        return self.dim + len(self.periodic)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The network's input: each periodic coordinate replaced by its cosine and sine."""
        if not self.periodic:
            return x
        cols = []
        for i in range(self.dim):
            if i in self.periodic:
                w = 2 * math.pi / self.periodic[i]
                cols += [torch.cos(w * x[:, i:i + 1]), torch.sin(w * x[:, i:i + 1])]
            else:
                cols.append(x[:, i:i + 1])
        return torch.cat(cols, 1)

    @property
    def order(self) -> int:
        return max(t.order for t in self.terms)

    def term(self, name: str) -> Term:
        from trainlab.errors import UnknownNameError

        for t in self.terms:
            if t.name == name:
                return t
        raise UnknownNameError(f"term of problem {self.name!r}", name,
                               [t.name for t in self.terms])

    def error_floor(self) -> float:
        """Relative L2 distance, on the evaluation grid, between the reference and the same
        reference at twice the resolution; 0.0 for a closed form. No claim of accuracy
        below about ten times this number is meaningful."""
        if self.refined is None:
            return 0.0
        a, b = self.reference(self.grid), self.refined(self.grid)
        return float((a - b).norm() / b.norm())


SAMPLINGS = ("uniform", "sobol")


def sobol_unit(n: int, d: int, generator: torch.Generator | None) -> torch.Tensor:
    """The first ``n`` points of a scrambled Sobol sequence in ``[0, 1)^d``, ``(n, d)``
    float64 (``torch.quasirandom.SobolEngine``, Owen-type scrambling seeded by one integer
    drawn from ``generator``): a low-discrepancy set, every point uniform in the cube, with
    far fewer empty regions than ``n`` independent uniform points."""
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    return torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(n, dtype=DTYPE)


def sample_box(lower: tuple[float, ...], upper: tuple[float, ...], n: int,
               generator: torch.Generator | None, sampling: str = "uniform") -> torch.Tensor:
    """``n`` points in the box ``[lower, upper]``: independent uniform ones, or with
    ``sampling="sobol"`` a scrambled Sobol set (:func:`sobol_unit`) mapped onto the box."""
    lo, hi = torch.tensor(lower, dtype=DTYPE), torch.tensor(upper, dtype=DTYPE)
    if sampling == "sobol":
        return lo + (hi - lo) * sobol_unit(n, len(lower), generator)
    return lo + (hi - lo) * torch.rand(n, len(lower), generator=generator, dtype=DTYPE)


def sample_faces(lower: tuple[float, ...], upper: tuple[float, ...], n: int,
                 generator: torch.Generator | None, dims: tuple[int, ...],
                 sampling: str = "uniform") -> torch.Tensor:
    """``n`` points uniform on the faces ``x_i = lower_i`` or ``upper_i``, ``i in dims``, of
    the box (each face chosen with probability proportional to its area; other coordinates
    from :func:`sample_box` with ``sampling``)."""
    x = sample_box(lower, upper, n, generator, sampling)
    lo, hi = torch.tensor(lower, dtype=DTYPE), torch.tensor(upper, dtype=DTYPE)
    side = hi - lo
    areas = torch.stack([torch.prod(torch.cat([side[:i], side[i + 1:]])) for i in dims])
    face = torch.multinomial(areas.repeat(2), n, replacement=True, generator=generator)
    which = torch.tensor(dims)[face % len(dims)]
    at = torch.where(face < len(dims), lo[which], hi[which])
    x[torch.arange(n), which] = at
    return x


def sample_slice(lower: tuple[float, ...], upper: tuple[float, ...], n: int,
                 generator: torch.Generator | None, dim: int, at: float,
                 sampling: str = "uniform") -> torch.Tensor:
    """``n`` points on the slice ``x_dim = at`` of the box (e.g. ``t = 0``), the other
    coordinates from :func:`sample_box` with ``sampling``."""
    x = sample_box(lower, upper, n, generator, sampling)
    x[:, dim] = at
    return x


def box_sampler(lower: tuple[float, ...], upper: tuple[float, ...],
                sampling: str = "uniform") -> Sampler:
    """The :class:`Term` sampler of :func:`sample_box` for this box and ``sampling``."""
    return lambda n, g: sample_box(lower, upper, n, g, sampling)


def faces_sampler(lower: tuple[float, ...], upper: tuple[float, ...], dims: tuple[int, ...],
                  sampling: str = "uniform") -> Sampler:
    """The :class:`Term` sampler of :func:`sample_faces` (faces normal to ``dims``)."""
    return lambda n, g: sample_faces(lower, upper, n, g, dims, sampling)


def slice_sampler(lower: tuple[float, ...], upper: tuple[float, ...], dim: int, at: float,
                  sampling: str = "uniform") -> Sampler:
    """The :class:`Term` sampler of :func:`sample_slice` (the slice ``x_dim = at``)."""
    return lambda n, g: sample_slice(lower, upper, n, g, dim, at, sampling)


def grid_box(lower: tuple[float, ...], upper: tuple[float, ...], n: int) -> torch.Tensor:
    """About ``n`` points on a tensor grid strictly inside the box: ``m = round(n ** (1/d))``
    equispaced interior points per axis (the end points excluded), ``m ** d`` in all."""
    m = max(1, round(n ** (1 / len(lower))))
    axes = [torch.linspace(lo, hi, m + 2, dtype=DTYPE)[1:-1] for lo, hi in zip(lower, upper)]
    return tensor_grid(*axes)


def grid_faces(lower: tuple[float, ...], upper: tuple[float, ...], n: int) -> torch.Tensor:
    """About ``n`` equispaced points on the boundary of a 2D box (``n // 4`` per edge,
    corners once)."""
    if len(lower) != 2:
        raise ValueError("grid_faces supports 2D boxes only")
    m = max(1, n // 4)
    (x0, y0), (x1, y1) = lower, upper
    s = torch.linspace(0.0, 1.0, m + 1, dtype=DTYPE)[:-1]  # each edge without its end
    edges = [torch.stack([x0 + (x1 - x0) * s, torch.full_like(s, y0)], 1),
             torch.stack([torch.full_like(s, x1), y0 + (y1 - y0) * s], 1),
             torch.stack([x1 - (x1 - x0) * s, torch.full_like(s, y1)], 1),
             torch.stack([torch.full_like(s, x0), y1 - (y1 - y0) * s], 1)]
    return torch.cat(edges)


def tensor_grid(*axes: torch.Tensor) -> torch.Tensor:
    """All combinations of the axes, ``(prod(len), len(axes))``, first axis slowest."""
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=1)


def check_count(name: str, n: int, owner: str) -> int:
    """A collocation count must be a positive integer."""
    check_range(name, n, low=1, owner=owner)
    return int(n)


PROBLEMS: Registry[Callable[..., Problem]] = Registry("problem")


def build_problem(name: str, **params: Any) -> Problem:
    """Build the registered problem ``name`` (unknown names list the valid ones)."""
    from trainlab.errors import ConfigError

    factory = PROBLEMS.get(name)
    try:
        return factory(**params)
    except TypeError as exc:
        raise ConfigError(f"problem {name!r}: {exc}") from None
