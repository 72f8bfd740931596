"""The empirical Fisher of a model's loss as a linear operator."""

from __future__ import annotations

import torch
from torch.func import jvp, vjp, vmap

from trainlab.curvature.operators._curvature import Batch, CurvatureOperator, Params


class EmpiricalFisherOperator(CurvatureOperator):
    r"""Empirical Fisher :math:`F = \frac1N\sum_n \nabla\ell_n \nabla\ell_n^\top`, the mean
    outer product of the per-sample loss gradients, at the observed targets.

    :math:`\ell_n` is ``loss_fn`` applied to sample ``n`` alone (so ``loss_fn`` must average
    over its batch, as ``reduction="mean"`` does). Products never form per-sample gradients:
    :math:`Fv = \frac1N J^\top (J v)` with :math:`J` the Jacobian of the vector of per-sample
    losses (one forward-mode and one reverse-mode pass). Needs a ``loss_fn``; see
    :class:`CurvatureOperator` for the arguments. Kunstner et al., "Limitations of the
    empirical Fisher approximation for natural gradient descent" (2019), explain why it is
    not the Fisher; :class:`~trainlab.curvature.GGNOperator` is (for CE and MSE).
    """

    needs_loss_fn = True

    def per_sample_losses(self, params: Params, batch: Batch) -> torch.Tensor:
        """The vector of per-sample losses :math:`(\\ell_1, \\dots, \\ell_N)`."""
        inputs, targets = batch
        out = self.outputs(params, inputs)
        return vmap(lambda o, t: self.loss_fn(o[None], t[None]))(out, targets)

    def _product(self, tangent: Params, batch: Batch) -> Params:
        def f(p: Params) -> torch.Tensor:
            return self.per_sample_losses(p, batch)

        _, jv = jvp(f, (self.params,), (tangent,))
        _, pullback = vjp(f, self.params)
        return pullback(jv / jv.shape[0])[0]
