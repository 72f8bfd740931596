r"""Two-timescale extragradient (and two-timescale GDA) for local minimax points.

With :math:`z = (x, y)`, :math:`F = (\nabla_x f, -\nabla_y f)` and the timescale scaling
:math:`\Lambda_\tau = \operatorname{diag}(\tfrac{1}{\tau} I_{d_x}, I_{d_y})`,

.. math::
    z_{k+1/2} = z_k - \eta \Lambda_\tau F(z_k), \qquad
    z_{k+1} = z_k - \eta \Lambda_\tau F(z_{k+1/2}):

the max player moves with step :math:`\eta`, the min player :math:`\tau` times slower.
:math:`\tau = 1` is plain extragradient with :math:`\gamma_1 = \gamma_2 = \eta`
(:func:`~trainlab.minimax.extragradient.extragradient` does both). Near a local minimax point
with a degenerate :math:`\nabla^2_{yy} f` (e.g. :math:`f = a x^2/2 + bxy`, :math:`a < 0`:
:math:`(0, 0)` is local minimax, :math:`\nabla^2_{yy} f = 0`) two-timescale GDA is unstable
for every :math:`\tau`, since :math:`\operatorname{tr}(\Lambda_\tau J) = a/\tau < 0`, while the
extragradient correction :math:`\eta^2 (\Lambda_\tau J)^2` stabilises it once :math:`\tau` is
large enough; :func:`local_radii` computes both spectral radii.

References:
    Chae, Kim, Kim. "Two-timescale Extragradient for Finding Local Minimax Points",
    ICLR 2024 (papers.md row 110): convergence to points satisfying the second-order
    necessary condition of local minimax points without nondegenerate
    :math:`\nabla^2_{yy} f`, where two-timescale GDA fails. The :math:`\tau`-GDA convention
    (min step :math:`\eta/\tau`) is Jin, Netrapalli, Jordan, "What is local optimality in
    nonconvex-nonconcave minimax optimization?", ICML 2020.

Deviations from the paper:
    Only the abstract was read: the placement of :math:`\tau` on the min player (Jin et
    al.'s convention) is assumed, and the paper's restricted-Schur-complement condition and
    its step-size and :math:`\tau` thresholds are not implemented; local convergence is
    decided here by the exact spectral radius of the linearised iteration.
"""

from __future__ import annotations

import torch

from trainlab.errors import check_range
from trainlab.minimax.extragradient import extragradient, gda, iteration_matrix, spectral_radius
from trainlab.minimax.operators import Operator
from trainlab.minimax.trajectory import Trajectory


def timescale_scaling(dim_x: int, dim_y: int, tau: float, *,
                      dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``diag(Lambda_tau)``: ``1/tau`` on the ``dim_x`` min coordinates, ``1`` on the rest."""
    check_range("tau", tau, low=0.0, low_open=True, owner="timescale_scaling")
    return torch.cat([torch.full((dim_x,), 1.0 / tau, dtype=dtype), torch.ones(dim_y, dtype=dtype)])


def two_timescale_extragradient(operator: Operator, z0: torch.Tensor, *, dim_x: int,
                                lr: float, tau: float, steps: int) -> Trajectory:
    """Two-timescale extragradient: max step ``lr``, min step ``lr / tau``.

    Args:
        operator: ``F = (grad_x f, -grad_y f)``
            (:func:`~trainlab.minimax.operators.game_operator`).
        z0: the start ``(x0, y0)`` flattened; ``dim_x`` entries belong to the min player.
        lr: ``eta > 0``. tau: the timescale ratio ``>= 1`` in the paper's regime.
        steps: iterations (two calls to ``F`` each).
    """
    scale = timescale_scaling(dim_x, z0.numel() - dim_x, tau, dtype=z0.dtype)
    return extragradient(operator, z0, gamma1=lr, gamma2=lr, steps=steps, scale=scale)


def two_timescale_gda(operator: Operator, z0: torch.Tensor, *, dim_x: int, lr: float,
                      tau: float, steps: int) -> Trajectory:
    """Two-timescale GDA (Jin et al.'s tau-GDA): max step ``lr``, min step ``lr / tau``."""
    scale = timescale_scaling(dim_x, z0.numel() - dim_x, tau, dtype=z0.dtype)
    return gda(operator, z0, gamma=lr, steps=steps, scale=scale)


def local_radii(jacobian: torch.Tensor, *, dim_x: int, lr: float, tau: float
                ) -> dict[str, float]:
    """Spectral radii of the linearised two-timescale EG and GDA maps at a stationary point
    with operator Jacobian ``jacobian``: below one means locally attracting."""
    scale = timescale_scaling(dim_x, jacobian.shape[0] - dim_x, tau, dtype=jacobian.dtype)
    return {
        "extragradient": spectral_radius(iteration_matrix(jacobian, lr, lr, scale=scale)),
        "gda": spectral_radius(iteration_matrix(jacobian, lr, scale=scale, method="gda")),
    }
