"""The loss on the straight line from the initialization to the current parameters
(Goodfellow, Vinyals & Saxe, "Qualitatively characterizing neural network optimization
problems", ICLR 2015; papers.md row 104)."""

from __future__ import annotations

from trainlab.analyses.landscape import interpolate
from trainlab.errors import check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


class InitInterpolation(Probe):
    """``interp/barrier``: largest excess of the batch loss on the segment
    :math:`(1-a)\\theta_0 + a\\theta_t` over the straight line between its end values;
    ``interp/monotone``: 1.0 when the loss decreases monotonically along the segment (the
    paper's finding for many networks), else 0.0; ``interp/max_loss``.

    Deviations from the paper: the paper plots the loss curve along the line on the training
    data; this probe evaluates this step's batch at ``points`` values of :math:`a` in [0, 1]
    and summarizes the curve by the barrier, a monotonicity flag and the maximum (this
    library's summaries).

    Args:
        every: cadence.
        points: alphas on the segment, ends included (default 25).
    """

    name = "init-interpolation"

    def __init__(self, every: int = 1, points: int = 25):
        super().__init__(every)
        check_range("points", points, low=2, owner="init-interpolation")
        self.points = points

    def measure(self, ctx: ProbeContext) -> Measurement:
        x, y = ctx.batch
        theta0 = {n: ctx.init_params[n] for n in ctx.params()}
        res = interpolate(ctx.model, ctx.loss_fn, x, y, theta0, points=self.points)
        return {"interp/barrier": res.barrier, "interp/monotone": float(res.monotone),
                "interp/max_loss": float(res.losses.max())}


PROBES.register("init-interpolation", InitInterpolation, papers=(104,),
                metrics=("interp/*",), plot="curves", title="Interpolation from initialization",
                summary="loss barrier and monotonicity on the init-to-current linear path")
