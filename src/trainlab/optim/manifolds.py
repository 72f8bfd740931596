r"""The Riemannian geometry used by :class:`~trainlab.optim.riemannian_adam.RiemannianAdam`:
Euclidean space, the unit sphere and the Poincare ball, each over the last dimension of a
tensor (every row is one point; the product of rows is the product manifold of the paper).

Each manifold gives: ``egrad2rgrad`` (Riemannian gradient from the Euclidean one),
``component_inner`` (the squared norm of a tangent vector per component, the quantity Adam's
second moment averages), ``retr`` (move along a tangent vector) and ``transp`` (carry a tangent
vector to the new point). Names are strings so param groups stay serializable.
"""

from __future__ import annotations

import math

import torch

from trainlab.errors import UnknownNameError


def _dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u * v).sum(-1, keepdim=True)


class Euclidean:
    """Flat space: every operation is the identity, and the second moment is per coordinate
    (so Riemannian Adam is exactly Adam)."""

    def egrad2rgrad(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return u

    def component_inner(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return u * u

    def retr(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return x + u

    def transp(self, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return v


class Sphere:
    r"""The unit sphere :math:`\{x: \lVert x\rVert = 1\}` per row. Tangent projection
    :math:`u - \langle x,u\rangle x`; transport by projection onto the new tangent space.
    ``exact=True`` retracts with the exponential map :math:`\cos(\lVert u\rVert)x +
    \sin(\lVert u\rVert)u/\lVert u\rVert`, else with :math:`(x+u)/\lVert x+u\rVert`."""

    def __init__(self, exact: bool = True):
        self.exact = exact

    def proju(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return u - _dot(x, u) * x

    def egrad2rgrad(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.proju(x, u)

    def component_inner(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return _dot(u, u)

    def retr(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        y = x + u
        proj = y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)
        if not self.exact:
            return proj
        n = torch.linalg.vector_norm(u, dim=-1, keepdim=True)
        tiny = torch.finfo(u.dtype).eps
        exp = torch.cos(n) * x + torch.sin(n) * u / n.clamp_min(tiny)
        return torch.where(n > tiny, exp, proj)

    def transp(self, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.proju(y, v)


class PoincareBall:
    r"""The Poincare ball of curvature :math:`-c` per row, with conformal factor
    :math:`\lambda_x = 2/(1 - c\lVert x\rVert^2)` and metric :math:`\lambda_x^2\langle\cdot,
    \cdot\rangle`. Riemannian gradient :math:`u/\lambda_x^2`; parallel transport
    :math:`\mathrm{gyr}[y, -x]v\,\lambda_x/\lambda_y` (Ungar's gyration from Mobius additions).
    ``exact=True`` retracts with the exponential map :math:`x \oplus \tanh(\sqrt c\lambda_x
    \lVert u\rVert/2)\,u/(\sqrt c\lVert u\rVert)`, else with :math:`x + u`; either way the
    result is pulled inside the ball to norm at most :math:`(1-\delta)/\sqrt c` (:math:`\delta`
    = 4e-3 in float32, 1e-5 otherwise)."""

    def __init__(self, c: float = 1.0, exact: bool = True):
        self.c = c
        self.exact = exact

    def lam(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 / (1.0 - self.c * _dot(x, x)).clamp_min(1e-15)

    def mobius_add(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c, xy, x2, y2 = self.c, _dot(x, y), _dot(x, x), _dot(y, y)
        num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
        return num / (1 + 2 * c * xy + c * c * x2 * y2).clamp_min(1e-15)

    def gyration(self, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathrm{gyr}[a,b]w = \ominus(a\oplus b)\oplus(a\oplus(b\oplus w))`."""
        return self.mobius_add(-self.mobius_add(a, b), self.mobius_add(a, self.mobius_add(b, w)))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        delta = 4e-3 if x.dtype == torch.float32 else 1e-5
        max_norm = (1 - delta) / math.sqrt(self.c)
        n = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(1e-15)
        return torch.where(n > max_norm, x / n * max_norm, x)

    def egrad2rgrad(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return u / self.lam(x) ** 2

    def component_inner(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.lam(x) ** 2 * _dot(u, u)

    def retr(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        if not self.exact:
            return self.project(x + u)
        sc = math.sqrt(self.c)
        n = torch.linalg.vector_norm(u, dim=-1, keepdim=True).clamp_min(1e-15)
        step = torch.tanh(sc * self.lam(x) * n / 2) * u / (sc * n)
        return self.project(self.mobius_add(x, step))

    def transp(self, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.gyration(y, -x, v) * self.lam(x) / self.lam(y)


MANIFOLDS = {
    "euclidean": Euclidean(),
    "sphere": Sphere(exact=True),
    "sphere_retr": Sphere(exact=False),
    "poincare": PoincareBall(exact=True),
    "poincare_retr": PoincareBall(exact=False),
}


def manifold(name: str) -> Euclidean | Sphere | PoincareBall:
    """The manifold registered as ``name`` (see :data:`MANIFOLDS`)."""
    try:
        return MANIFOLDS[name]
    except KeyError:
        raise UnknownNameError("manifold", name, MANIFOLDS) from None
