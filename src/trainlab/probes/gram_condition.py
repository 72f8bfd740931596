r"""Spectrum and condition number of the Gauss-Newton Gram matrix of a least-squares loss.

For a loss :math:`\tfrac12 \|\rho(\theta)\|^2` with residual Jacobian :math:`J` (per point,
:func:`trainlab.optim.engd.least_squares_system`), the Gram matrix :math:`G = J^\top J` is
the matrix that governs gradient descent near the current parameters: linearised, the error
contracts like :math:`(1 - \eta \lambda)^k` along each eigenvector, so the speed of training
is set by the condition number :math:`\kappa = \lambda_{\max} / \lambda_{\min}`. For a PINN
loss :math:`G` is the empirical version (collocation points instead of integrals) of the
operator :math:`A = D^* D` of "An operator preconditioning perspective on training in
physics-informed machine learning" (De Ryck, Bonnet, Mishra, de Bézenac, ICLR 2024; papers.md
row 40, section 2). For a linear PDE, :math:`G` does not depend on the forcing: on the Poisson
ladder (``pinn-poisson -p task.k=...``) the same network and points give the same :math:`G`
for every ``k``; what changes with ``k`` is how much of the target lies along its small
eigenvalues.

Values: ``gram/lambda_max``, ``gram/lambda_min`` (the smallest eigenvalue above
``rtol * lambda_max``), ``gram/condition`` (their ratio), ``gram/rank`` (how many eigenvalues
are above the cutoff). Needs a least-squares loss (regression or ``pinn-*`` tasks); for
other losses it records why it measured nothing (``ctx.skip``).

Deviations from the paper: the paper's :math:`\kappa(A)` is over the whole (infinite) operator
restricted to the model's tangent space; an over-parametrised network has an exactly singular
empirical Gram, so the condition number here is over the numerically nonzero spectrum
(cutoff ``rtol``). The preconditioning experiments of the paper are not implemented.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from trainlab.errors import ConfigError, check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext


class GramCondition(Probe):
    """``gram/*`` values of the module docstring on (up to ``max_points`` rows of) the step's
    batch; ``rtol`` is the relative eigenvalue cutoff."""

    name = "gram-condition"

    def __init__(self, every: int = 1, rtol: float = 1e-12, max_points: int = 2048):
        super().__init__(every)
        self.rtol = check_range("rtol", rtol, low=0.0, high=1.0, low_open=True,
                                owner="probe 'gram-condition'")
        self.max_points = int(check_range("max_points", max_points, low=1,
                                          owner="probe 'gram-condition'"))

    def measure(self, ctx: ProbeContext) -> Measurement:
        from trainlab.optim.engd import least_squares_system

        x, y = ctx.batch
        if len(x) > self.max_points:
            rows = torch.randperm(len(x), generator=ctx.generator)[: self.max_points]
            x, y = x[rows], y[rows]
        params = [p for p in ctx.model.parameters() if p.requires_grad]
        view = SimpleNamespace(model=ctx.model, loss_fn=ctx.loss_fn, inputs=x, targets=y)
        try:
            _, jac, _ = least_squares_system(view, params)
        except ConfigError as exc:  # not a least-squares loss
            return ctx.skip(self.name, f"needs a least-squares loss: {exc}")
        lam = torch.linalg.svdvals(jac).pow(2)
        kept = lam[lam > self.rtol * lam[0]] if float(lam[0]) > 0 else lam[:0]
        if len(kept) == 0:
            return {"gram/lambda_max": lam[0], "gram/rank": 0.0}
        return {"gram/lambda_max": kept[0], "gram/lambda_min": kept[-1],
                "gram/condition": kept[0] / kept[-1], "gram/rank": float(len(kept))}


PROBES.register("gram-condition", GramCondition, papers=(40,), metrics=("gram/*",),
                plot="curves", title="Gauss-Newton Gram matrix conditioning",
                summary="spectrum and condition number of the Gauss-Newton Gram matrix "
                        "J^T J (least-squares and PINN losses)")
