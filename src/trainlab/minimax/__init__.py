"""Min-max optimization: games as operators, and the methods whose dynamics decide whether
a nonconvex-nonconcave game converges (proximal point, extragradient with two step sizes,
two-timescale extragradient) beside gradient descent-ascent, which cycles or diverges.

Every method is a pure function ``method(F, z0, ..., steps) -> Trajectory`` on flat tensors;
:data:`MINIMAX` registers them.
"""

from trainlab.minimax.extragradient import (
    extragradient,
    extragradient_bound,
    gda,
    iteration_matrix,
    spectral_radius,
)
from trainlab.minimax.operators import comonotonicity, game_operator, linear_game, linear_operator
from trainlab.minimax.proximal_point import proximal_point, proximal_point_bound, resolvent
from trainlab.minimax.trajectory import Trajectory
from trainlab.minimax.two_timescale import (
    local_radii,
    timescale_scaling,
    two_timescale_extragradient,
    two_timescale_gda,
)
from trainlab.registry import Registry

MINIMAX: Registry = Registry("minimax")
MINIMAX.register("proximal-point", proximal_point, papers=(91,),
                 summary="proximal point z+ = (I + gamma F)^-1 z; converges for gamma > 2 rho")
MINIMAX.register("extragradient", extragradient, papers=(91,),
                 summary="extragradient with gamma2 < gamma1 - 2 rho beyond monotonicity")
MINIMAX.register("two-timescale-extragradient", two_timescale_extragradient, papers=(110,),
                 summary="extragradient with the min player tau times slower (local minimax)")
MINIMAX.register("gda", gda,
                 summary="simultaneous gradient descent-ascent (the cycling/diverging foil)")
MINIMAX.register("two-timescale-gda", two_timescale_gda,
                 summary="tau-GDA: min step lr/tau, max step lr (fails at degenerate points)")

__all__ = ["MINIMAX", "Trajectory", "comonotonicity", "extragradient", "extragradient_bound",
           "game_operator", "gda", "iteration_matrix", "linear_game", "linear_operator",
           "local_radii", "proximal_point", "proximal_point_bound", "resolvent",
           "spectral_radius", "timescale_scaling", "two_timescale_extragradient",
           "two_timescale_gda"]
