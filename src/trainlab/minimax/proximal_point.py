r"""The proximal point method for (possibly non-monotone) operators.

.. math::
    z_{k+1} = (I + \gamma F)^{-1}(z_k), \quad\text{i.e.}\quad z_{k+1} + \gamma F(z_{k+1}) = z_k.

Under :math:`\rho`-negative comonotonicity the resolvent is single-valued and the method
converges for :math:`\gamma > 2\rho` (the paper's condition; on a linear game below it the
iteration matrix has spectral radius above one, so the condition is sharp). The bound that
:func:`proximal_point_bound` evaluates follows from the resolvent being
:math:`\alpha`-averaged with :math:`\alpha = \gamma / (2(\gamma - \rho))`: the Fejér
inequality summed over :math:`N` steps gives the last-iterate rate

.. math::
    \|F(z_N)\|^2 \le \frac{\|z_0 - z^*\|^2}{\gamma(\gamma - 2\rho) N}.

The resolvent is solved by Newton's method on :math:`w + \gamma F(w) - z = 0` with the
Jacobian from ``torch.func.jacfwd`` (exact in one step for a linear :math:`F`); a solve that
does not reach ``tol`` raises instead of returning an inexact point.

References:
    Gorbunov, Taylor, Horváth, Gidel. "Convergence of Proximal Point and Extragradient-Based
    Methods Beyond Monotonicity: the Case of Negative Comonotonicity", ICML 2023
    (papers.md row 91), Section 3 (proximal point under negative comonotonicity).

Deviations from the paper:
    The paper proves a tight O(1/N) last-iterate rate with its own constant (found by
    performance estimation); only the abstract and opening were read here, so
    :func:`proximal_point_bound` is the O(1/N) bound derived above from averagedness, not a
    transcription of the paper's theorem. The paper's resolvent is exact; here it is Newton's
    method to ``tol``.
"""

from __future__ import annotations

import torch
from torch.func import jacfwd

from trainlab.errors import TrainlabError, check_range
from trainlab.minimax.operators import Operator
from trainlab.minimax.trajectory import Trajectory


def resolvent(operator: Operator, z: torch.Tensor, gamma: float, *, tol: float = 1e-12,
              max_iter: int = 50) -> tuple[torch.Tensor, int]:
    """Solve ``w + gamma F(w) = z`` by Newton's method from ``w = z``.

    Returns:
        ``(w, evaluations)``: the solution and the number of calls to ``F`` (Jacobians
        counted as one call each).

    Raises:
        TrainlabError: the residual is still above ``tol`` after ``max_iter`` steps.
    """
    check_range("max_iter", max_iter, low=1, owner="resolvent")
    eye = torch.eye(z.numel(), dtype=z.dtype)
    w, calls = z.clone(), 0
    for _ in range(max_iter):
        r = w + gamma * operator(w) - z
        calls += 1
        if r.norm() <= tol * max(1.0, float(z.norm())):
            return w, calls
        jac = eye + gamma * jacfwd(operator)(w)
        calls += 1
        w = w - torch.linalg.solve(jac, r)
    raise TrainlabError(f"resolvent: Newton did not reach tol={tol:g} in {max_iter} steps "
                        f"(residual {float(r.norm()):.3g}); lower gamma or raise max_iter")


def proximal_point(operator: Operator, z0: torch.Tensor, *, gamma: float, steps: int,
                   tol: float = 1e-12, max_iter: int = 50) -> Trajectory:
    """Run ``steps`` proximal point iterations from ``z0``.

    Args:
        operator: ``F`` (e.g. from :func:`~trainlab.minimax.operators.game_operator`).
        z0: the start (flat; float64 recommended).
        gamma: the step, ``> 0``; converges on rho-negatively comonotone ``F`` iff
            ``gamma > 2 rho`` (worst case).
        steps: number of iterations ``N >= 0``.
        tol, max_iter: the Newton solve of each resolvent (relative residual).
    """
    check_range("gamma", gamma, low=0.0, low_open=True, owner="proximal_point")
    check_range("steps", steps, low=0, owner="proximal_point")
    z = z0.detach().clone()
    zs, calls = [z], 0
    for _ in range(steps):
        z, c = resolvent(operator, z, gamma, tol=tol, max_iter=max_iter)
        zs.append(z)
        calls += c
    iterates = torch.stack(zs)
    residuals = torch.stack([operator(w).norm() for w in zs])
    return Trajectory(iterates, residuals, iterates.new_empty(0), calls)


def proximal_point_bound(gamma: float, rho: float, distance: float, steps: int) -> float:
    """``||z_0 - z*||^2 / (gamma (gamma - 2 rho) N)``: the last-iterate bound on
    ``||F(z_N)||^2`` (see the module docstring); ``inf`` when ``gamma <= 2 rho``."""
    check_range("steps", steps, low=1, owner="proximal_point_bound")
    if gamma <= 2 * rho:
        return float("inf")
    return distance**2 / (gamma * (gamma - 2 * rho) * steps)
