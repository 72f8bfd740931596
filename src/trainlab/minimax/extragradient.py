r"""Extragradient with two step sizes, and gradient descent-ascent (its cycling foil).

.. math::
    \tilde z_k = z_k - \gamma_1 \Lambda F(z_k), \qquad
    z_{k+1} = z_k - \gamma_2 \Lambda F(\tilde z_k),

with :math:`\Lambda = I` for the plain method (:math:`\Lambda` is the timescale scaling of
:mod:`trainlab.minimax.two_timescale`). GDA is :math:`z_{k+1} = z_k - \gamma \Lambda F(z_k)`.

Under :math:`\rho`-negative comonotonicity (indeed under the weaker star version) and
:math:`L`-Lipschitz :math:`F`, with :math:`\gamma_1 \le 1/L` and
:math:`\gamma_2 < \gamma_1 - 2\rho` (so :math:`\rho < 1/(2L)`), one step satisfies
:math:`\|z_{k+1} - z^*\|^2 \le \|z_k - z^*\|^2 - \gamma_2(\gamma_1 - 2\rho - \gamma_2)
\|F(\tilde z_k)\|^2`, hence the best-iterate rate that :func:`extragradient_bound` evaluates,

.. math::
    \min_{k < N} \|F(\tilde z_k)\|^2 \le
    \frac{\|z_0 - z^*\|^2}{\gamma_2(\gamma_1 - 2\rho - \gamma_2) N}.

On the linear games of :func:`~trainlab.minimax.operators.linear_game` with
:math:`\gamma_1 = 1/L` the iteration contracts exactly when :math:`\gamma_2 < \gamma_1 - 2\rho`,
and the classic choice :math:`\gamma_1 = \gamma_2` diverges when :math:`\rho > 0`; GDA
diverges on every such game (and cycles outward on the bilinear one, :math:`a = 0`).

References:
    Gorbunov, Taylor, Horváth, Gidel. "Convergence of Proximal Point and Extragradient-Based
    Methods Beyond Monotonicity: the Case of Negative Comonotonicity", ICML 2023
    (papers.md row 91), Section 4 (extragradient with :math:`\gamma_2 < \gamma_1`). The
    method is Korpelevich's (1976).

Deviations from the paper:
    The bound is the standard best-iterate bound (the paper shows that this guarantee is
    tight and relaxes the assumptions of the last-iterate one); its constant is derived in
    the docstring above, not transcribed from the paper, whose full text was not read.
"""

from __future__ import annotations

import torch

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.minimax.operators import Operator
from trainlab.minimax.trajectory import Trajectory


def _scaling(scale: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor | float:
    if scale is None:
        return 1.0
    if scale.shape != z.shape:
        raise ConfigError(f"The 'scale' parameter must have the shape of z0 {tuple(z.shape)}. "
                          f"Got {tuple(scale.shape)} instead.")
    return scale.to(z.dtype)


def extragradient(operator: Operator, z0: torch.Tensor, *, gamma1: float,
                  gamma2: float | None = None, steps: int,
                  scale: torch.Tensor | None = None) -> Trajectory:
    """Run ``steps`` extragradient iterations from ``z0``.

    Args:
        operator: ``F``.
        z0: the start (flat).
        gamma1: the extrapolation step ``> 0`` (the paper's analysis takes ``1/L``).
        gamma2: the update step ``> 0`` (default ``gamma1``, the classic method; beyond
            monotonicity take ``gamma2 < gamma1 - 2 rho``).
        steps: number of iterations ``N >= 0``; each costs two calls to ``F``.
        scale: per-coordinate step multipliers ``Lambda`` (``None``: all ones).
    """
    check_range("gamma1", gamma1, low=0.0, low_open=True, owner="extragradient")
    gamma2 = gamma1 if gamma2 is None else gamma2
    check_range("gamma2", gamma2, low=0.0, low_open=True, owner="extragradient")
    check_range("steps", steps, low=0, owner="extragradient")
    z = z0.detach().clone()
    lam = _scaling(scale, z)
    zs, fz, ft = [z], [], []
    for _ in range(steps):
        g = operator(z)
        fz.append(g.norm())
        z_half = z - gamma1 * lam * g
        g_half = operator(z_half)
        ft.append(g_half.norm())
        z = z - gamma2 * lam * g_half
        zs.append(z)
    fz.append(operator(z).norm())
    return Trajectory(torch.stack(zs), torch.stack(fz),
                      torch.stack(ft) if ft else z.new_empty(0), 2 * steps)


def gda(operator: Operator, z0: torch.Tensor, *, gamma: float, steps: int,
        scale: torch.Tensor | None = None) -> Trajectory:
    """Simultaneous gradient descent-ascent ``z <- z - gamma Lambda F(z)``."""
    check_range("gamma", gamma, low=0.0, low_open=True, owner="gda")
    check_range("steps", steps, low=0, owner="gda")
    z = z0.detach().clone()
    lam = _scaling(scale, z)
    zs, fz = [z], []
    for _ in range(steps):
        g = operator(z)
        fz.append(g.norm())
        z = z - gamma * lam * g
        zs.append(z)
    fz.append(operator(z).norm())
    return Trajectory(torch.stack(zs), torch.stack(fz), z.new_empty(0), steps)


def extragradient_bound(gamma1: float, gamma2: float, rho: float, lipschitz: float,
                        distance: float, steps: int) -> float:
    """``||z_0 - z*||^2 / (gamma2 (gamma1 - 2 rho - gamma2) N)``: the bound on
    ``min_{k<N} ||F(z~_k)||^2``; ``inf`` outside ``gamma1 <= 1/L``, ``gamma2 < gamma1 - 2rho``."""
    check_range("steps", steps, low=1, owner="extragradient_bound")
    margin = gamma1 - 2 * rho - gamma2
    if gamma1 * lipschitz > 1 + 1e-12 or margin <= 0:
        return float("inf")
    return distance**2 / (gamma2 * margin * steps)


def iteration_matrix(jacobian: torch.Tensor, gamma1: float, gamma2: float | None = None, *,
                     scale: torch.Tensor | None = None, method: str = "extragradient"
                     ) -> torch.Tensor:
    """The linear map ``z_k -> z_{k+1}`` of a method on ``F(z) = J z`` (the linearisation
    at a stationary point): ``I - g2 M + g1 g2 M^2`` for extragradient, ``I - g1 M`` for
    GDA, with ``M = Lambda J``. Its spectral radius decides local convergence."""
    eye = torch.eye(jacobian.shape[0], dtype=jacobian.dtype)
    m = jacobian if scale is None else torch.diag(scale.to(jacobian.dtype)) @ jacobian
    if method == "gda":
        return eye - gamma1 * m
    check_choice("method", method, ("extragradient", "gda"), owner="iteration_matrix")
    gamma2 = gamma1 if gamma2 is None else gamma2
    return eye - gamma2 * m + gamma1 * gamma2 * m @ m


def spectral_radius(matrix: torch.Tensor) -> float:
    """The largest eigenvalue modulus."""
    return float(torch.linalg.eigvals(matrix).abs().max())
