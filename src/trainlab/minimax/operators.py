r"""Games as operators: the min-max problem :math:`\min_x \max_y f(x, y)` as a root-finding
problem for :math:`F(z) = (\nabla_x f(x, y), -\nabla_y f(x, y))`, :math:`z = (x, y)`.

A zero of :math:`F` is a stationary point of the game (a saddle point when :math:`f` is
convex-concave). The constants that decide which method converges are the Lipschitz constant
:math:`L` of :math:`F` and its negative-comonotonicity modulus :math:`\rho \ge 0`,

.. math::
    \langle F(z) - F(z'), z - z' \rangle \ge -\rho \|F(z) - F(z')\|^2 \quad \forall z, z',

which for a linear operator :math:`F(z) = Az` (invertible :math:`A`) is
:math:`\rho = \max(0, -\lambda_{\min}(\operatorname{sym}(A^{-1})))` (substitute
:math:`v = Au`). :func:`linear_game` builds the two-parameter family
:math:`f = \tfrac{a}{2}(x^2 - y^2) + bxy`, :math:`A = [[a, b], [-b, a]]`, for which
:math:`\rho = -a/(a^2 + b^2)` when :math:`a < 0` and :math:`L = \sqrt{a^2 + b^2}`.

References:
    Gorbunov, Taylor, Horváth, Gidel. "Convergence of Proximal Point and Extragradient-Based
    Methods Beyond Monotonicity: the Case of Negative Comonotonicity", ICML 2023
    (papers.md row 91), Section 1.1 (the inclusion problem and the comonotonicity classes).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import grad

from trainlab.errors import ConfigError, check_range

Operator = Callable[[torch.Tensor], torch.Tensor]
Game = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def game_operator(f: Game, dim_x: int) -> Operator:
    """The operator ``F(z) = (grad_x f, -grad_y f)`` of ``min_x max_y f(x, y)``.

    Args:
        f: a scalar function ``f(x, y)`` of two flat tensors.
        dim_x: the number of leading entries of ``z`` that belong to the min player.

    Returns:
        ``F``: flat ``z`` (length ``dim_x + dim_y``) to a flat tensor of the same shape.
    """
    check_range("dim_x", dim_x, low=1, owner="game_operator")
    gx, gy = grad(f, argnums=0), grad(f, argnums=1)

    def operator(z: torch.Tensor) -> torch.Tensor:
        x, y = z[:dim_x], z[dim_x:]
        return torch.cat([gx(x, y), -gy(x, y)])

    return operator


def linear_operator(matrix: torch.Tensor) -> Operator:
    """``F(z) = A z`` (the game's Jacobian at its solution ``z* = 0``)."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ConfigError(f"The 'matrix' parameter of linear_operator must be square. "
                          f"Got shape {tuple(matrix.shape)} instead.")
    return lambda z: matrix @ z


def linear_game(a: float, b: float, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The matrix ``A = [[a, b], [-b, a]]`` of ``f = a/2 (x^2 - y^2) + b x y``.

    ``a < 0`` makes the game nonconvex-nonconcave; with ``b != 0`` its operator is still
    ``rho``-negatively comonotone with ``rho = -a / (a^2 + b^2)`` (see
    :func:`comonotonicity`).
    """
    return torch.tensor([[a, b], [-b, a]], dtype=dtype)


def comonotonicity(matrix: torch.Tensor) -> tuple[float, float]:
    """``(rho, L)`` of the linear operator ``F(z) = A z``: the smallest ``rho >= 0`` with
    ``<A u, u> >= -rho ||A u||^2`` for all ``u``, and the Lipschitz constant ``||A||_2``.

    Raises:
        ConfigError: ``A`` is singular (then no finite ``rho`` exists unless ``A`` is
            monotone; the closed form needs ``A^{-1}``).
    """
    a = matrix.to(torch.float64)
    if torch.linalg.matrix_rank(a) < a.shape[0]:
        raise ConfigError("The 'matrix' parameter of comonotonicity must be invertible.")
    inv = torch.linalg.inv(a)
    sym = 0.5 * (inv + inv.T)
    rho = max(0.0, -float(torch.linalg.eigvalsh(sym)[0]))
    return rho, float(torch.linalg.matrix_norm(a, ord=2))
