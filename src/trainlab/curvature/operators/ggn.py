"""The generalized Gauss-Newton matrix of a model's loss as a linear operator."""

from __future__ import annotations

from torch.func import grad, jvp, vjp

from trainlab.curvature.operators._curvature import Batch, CurvatureOperator, Params


class GGNOperator(CurvatureOperator):
    r"""Generalized Gauss-Newton :math:`G = J^\top H_\ell J`, with :math:`J` the Jacobian of
    the model's outputs w.r.t. the parameters and :math:`H_\ell` the Hessian of the loss
    w.r.t. the outputs ("Fast curvature matrix-vector products for second-order gradient
    descent", Schraudolph 2002).

    Each product is a Jacobian-vector product (forward mode), a loss-Hessian product on the
    outputs, and a vector-Jacobian product (reverse mode). For cross-entropy and squared
    error (canonical links) :math:`G` equals the Fisher information of the model's
    predictive distribution, so this is also the (true) Fisher. :math:`G` is positive
    semi-definite whenever the loss is convex in the outputs. Needs a ``loss_fn``; see
    :class:`CurvatureOperator` for the arguments.
    """

    needs_loss_fn = True

    def _product(self, tangent: Params, batch: Batch) -> Params:
        inputs, targets = batch

        def f(p: Params):
            return self.outputs(p, inputs)

        out, jv = jvp(f, (self.params,), (tangent,))
        zero = self.zero_target_tangent(targets)
        if zero is None:
            _, hjv = jvp(grad(lambda o: self.loss_fn(o, targets)), (out,), (jv,))
        else:
            g_out = grad(lambda o, t: self.loss_fn(o, t))
            _, hjv = jvp(g_out, (out, targets), (jv, zero))
        _, pullback = vjp(f, self.params)
        return pullback(hjv)[0]
