r"""A family of variable-coefficient Poisson problems with random coefficients: the sparse
SPD systems the learned linear solvers (papers.md rows 4, 59, 108) train and are evaluated on.

.. math::  -\nabla\cdot\big(a(x)\,\nabla u(x)\big) = f(x) \ \text{on } (0,1)^2,
           \qquad u = 0 \ \text{on the boundary}.

Discretisation: the conservative 5-point finite-difference scheme on the ``n x n`` interior
nodes of a uniform grid (``h = 1/(n+1)``, natural row-major ordering, ``x`` fastest),

.. math::  (Au)_{ij} = h^{-2}\big[a_{i+\frac12,j}(u_{ij}-u_{i+1,j})
           + a_{i-\frac12,j}(u_{ij}-u_{i-1,j}) + a_{i,j+\frac12}(u_{ij}-u_{i,j+1})
           + a_{i,j-\frac12}(u_{ij}-u_{i,j-1})\big],

with the coefficient taken at the face midpoints. ``A`` is symmetric, and positive definite
whenever ``a > 0``; the scheme is second-order accurate for smooth ``a`` and ``u`` (tested
against a manufactured solution under refinement).

Coefficient fields (``kind``), all drawn through a ``torch.Generator``:

- ``"lognormal"``: :math:`a = \exp(\sigma g)` with :math:`g` a zero-mean, unit-variance
  Gaussian random field with squared-exponential covariance of length ``length`` (sampled by
  FFT filtering of white noise on a periodic grid twice the domain, so no periodicity shows),
  evaluated at the face midpoints (the ``(2n+3)^2`` half-step grid);
- ``"piecewise"``: a ``blocks x blocks`` checkerboard of constants :math:`10^{U(-c, c)}`
  (``c = contrast / 2`` decades), evaluated at the face midpoints.

Right-hand sides: a smooth random forcing (an independent Gaussian random field with the same
covariance, scaled to unit RMS), so solutions have the low-frequency content of PDE data.

:class:`PoissonFamily` draws ``train`` and ``test`` instances from disjoint seeds: the test
(held-out) coefficients never appear in training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from trainlab.errors import check_choice, check_range

KINDS = ("lognormal", "piecewise")


def assemble_faces(ax: np.ndarray, ay: np.ndarray, h: float) -> sp.csr_matrix:
    """The 5-point matrix from face coefficients.

    Args:
        ax: ``(n, n+1)`` coefficients on the vertical faces: ``ax[j, i]`` sits between
            columns ``i-1`` and ``i`` of row ``j`` (``i = 0`` and ``i = n`` touch the
            boundary).
        ay: ``(n+1, n)`` coefficients on the horizontal faces, ``ay[j, i]`` between rows
            ``j-1`` and ``j`` of column ``i``.
        h: grid spacing.

    Returns:
        ``A`` as CSR, ``n^2 x n^2``, float64, unknown ``(j, i)`` at index ``j * n + i``.
    """
    n = ax.shape[0]
    if ax.shape != (n, n + 1) or ay.shape != (n + 1, n):
        raise ValueError(f"face arrays must be (n, n+1) and (n+1, n); got {ax.shape}, {ay.shape}")
    idx = np.arange(n * n).reshape(n, n)
    diag = (ax[:, :-1] + ax[:, 1:] + ay[:-1, :] + ay[1:, :]).ravel()
    west = -ax[:, 1:-1]            # coupling (j, i) -- (j, i+1), i < n-1
    south = -ay[1:-1, :]           # coupling (j, i) -- (j+1, i), j < n-1
    rows = [idx.ravel(), idx[:, :-1].ravel(), idx[:, 1:].ravel(),
            idx[:-1, :].ravel(), idx[1:, :].ravel()]
    cols = [idx.ravel(), idx[:, 1:].ravel(), idx[:, :-1].ravel(),
            idx[1:, :].ravel(), idx[:-1, :].ravel()]
    vals = [diag, west.ravel(), west.ravel(), south.ravel(), south.ravel()]
    A = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n * n, n * n))
    return (A.tocsr() / h**2).tocsr()


def face_points(n: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Coordinates ``((x, y) of the vertical faces, (x, y) of the horizontal faces)``."""
    h = 1.0 / (n + 1)
    nodes = h * np.arange(1, n + 1)
    xv, yv = np.meshgrid(h * (np.arange(n + 1) + 0.5), nodes)      # (n, n+1)
    xh, yh = np.meshgrid(nodes, h * (np.arange(n + 1) + 0.5))      # (n+1, n)
    return (xv, yv), (xh, yh)


def assemble(a: Callable[[np.ndarray, np.ndarray], np.ndarray], n: int) -> sp.csr_matrix:
    """The 5-point matrix of ``-div(a grad u)`` on ``n x n`` interior nodes, ``a(x, y)``
    (vectorised) evaluated at the face midpoints."""
    (xv, yv), (xh, yh) = face_points(n)
    return assemble_faces(a(xv, yv), a(xh, yh), 1.0 / (n + 1))


def nodes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The interior node coordinates ``(x, y)``, each ``(n, n)`` (row ``j``, column ``i``)."""
    h = 1.0 / (n + 1)
    return np.meshgrid(h * np.arange(1, n + 1), h * np.arange(1, n + 1))


def gaussian_field(m: int, length: float, generator: torch.Generator | None) -> np.ndarray:
    """A zero-mean, unit-variance Gaussian random field on ``m x m`` points of spacing
    ``1/(m-1)`` with covariance ``exp(-r^2 / (2 length^2))``: white noise filtered in Fourier
    space on a ``2m x 2m`` periodic grid, the corner ``m x m`` kept (no wrap-around)."""
    big = 2 * m
    noise = torch.randn(big, big, generator=generator, dtype=torch.float64).numpy()
    k = np.fft.fftfreq(big, d=1.0 / (m - 1)) * 2 * math.pi          # angular wavenumbers
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    amp = np.exp(-0.25 * length**2 * k2)                           # sqrt of the SE spectrum
    g = np.real(np.fft.ifft2(np.fft.fft2(noise) * amp))[:m, :m]
    return (g - g.mean()) / g.std()


@dataclass(frozen=True)
class Instance:
    """One member of the family: the matrix, its coefficient field, a right-hand side and the
    direct solution (``spsolve``), all float64.

    Attributes:
        A: ``n^2 x n^2`` CSR, SPD.
        b: right-hand side ``(n^2,)``.
        x: ``A^{-1} b``.
        coefficient: ``(2n+3, 2n+3)`` the field ``a`` on the half-step grid (faces and nodes).
        seed: the seed that drew it.
        family: the family it belongs to (to draw more right-hand sides).
    """

    A: sp.csr_matrix
    b: np.ndarray
    x: np.ndarray
    coefficient: np.ndarray
    seed: int
    family: PoissonFamily | None = field(default=None, compare=False, repr=False)

    @property
    def n(self) -> int:
        return int(round(math.sqrt(self.A.shape[0])))


@dataclass(frozen=True)
class PoissonFamily:
    """Random-coefficient Poisson systems ``-div(a grad u) = f`` on an ``n x n`` grid.

    Args:
        n: interior nodes per side (64: a 4,096-unknown system).
        kind: ``"lognormal"`` or ``"piecewise"`` coefficient fields.
        sigma: standard deviation of ``log a`` (lognormal).
        length: correlation length of the Gaussian fields (coefficient and forcing).
        blocks: checkerboard blocks per side (piecewise).
        contrast: decades between the smallest and largest block value (piecewise).
        seed: base seed; training instance ``k`` uses ``seed + k``, test instance ``k`` uses
            ``seed + 1_000_003 + k`` (disjoint from training).
    """

    n: int = 64
    kind: str = "lognormal"
    sigma: float = 1.0
    length: float = 0.1
    blocks: int = 4
    contrast: float = 2.0
    seed: int = 0
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        owner = "PoissonFamily"
        check_range("n", self.n, low=2, owner=owner)
        check_choice("kind", self.kind, KINDS, owner=owner)
        check_range("sigma", self.sigma, low=0.0, owner=owner)
        check_range("length", self.length, low=0.0, low_open=True, owner=owner)
        check_range("blocks", self.blocks, low=1, owner=owner)
        check_range("contrast", self.contrast, low=0.0, owner=owner)

    def coefficient(self, generator: torch.Generator | None) -> np.ndarray:
        """A coefficient field on the ``(2n+3)^2`` half-step grid of the unit square."""
        m = 2 * self.n + 3
        if self.kind == "lognormal":
            return np.exp(self.sigma * gaussian_field(m, self.length, generator))
        logs = (torch.rand(self.blocks, self.blocks, generator=generator, dtype=torch.float64)
                .numpy() - 0.5) * self.contrast
        t = np.linspace(0.0, 1.0, m)
        cell = np.minimum((t * self.blocks).astype(int), self.blocks - 1)
        return 10.0 ** logs[cell[:, None], cell[None, :]]

    def matrix(self, coefficient: np.ndarray) -> sp.csr_matrix:
        """The system matrix of a half-step-grid coefficient field."""
        c = coefficient                 # c[2j, 2i] is the point (i h/2, j h/2)
        ax = c[2:-2:2, 1::2]            # vertical faces: node rows, half-step columns
        ay = c[1::2, 2:-2:2]            # horizontal faces
        return assemble_faces(ax, ay, 1.0 / (self.n + 1))

    def forcing(self, generator: torch.Generator | None) -> np.ndarray:
        """A smooth random right-hand side with unit RMS, on the interior nodes."""
        g = gaussian_field(self.n + 2, self.length, generator)[1:-1, 1:-1]
        return (g / np.sqrt(np.mean(g**2))).ravel()

    def instance(self, seed: int) -> Instance:
        """The instance drawn from ``seed`` (cached: the direct solve is done once)."""
        if seed not in self._cache:
            from scipy.sparse.linalg import spsolve

            gen = torch.Generator().manual_seed(seed)
            c = self.coefficient(gen)
            A = self.matrix(c)
            b = self.forcing(gen)
            self._cache[seed] = Instance(A, b, spsolve(A.tocsc(), b), c, seed, self)
        return self._cache[seed]

    def train(self, count: int) -> list[Instance]:
        check_range("count", count, low=1, owner="PoissonFamily.train")
        return [self.instance(self.seed + k) for k in range(count)]

    def test(self, count: int) -> list[Instance]:
        """Held-out instances: seeds disjoint from every training seed."""
        check_range("count", count, low=1, owner="PoissonFamily.test")
        return [self.instance(self.seed + 1_000_003 + k) for k in range(count)]
