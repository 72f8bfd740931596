"""The Hessian of a model's loss as a linear operator (forward-over-reverse ``torch.func``)."""

from __future__ import annotations

from torch.func import grad, jvp

from trainlab.curvature.operators._curvature import Batch, CurvatureOperator, Params


class HessianOperator(CurvatureOperator):
    r"""Hessian :math:`H = \nabla^2_\theta L(\theta)` of the (mean) batch loss.

    Each product is one forward-mode derivative of the reverse-mode gradient,
    :math:`Hv = \partial_\epsilon \nabla L(\theta + \epsilon v)|_{0}` (``jvp`` of ``grad``), so
    no ``create_graph`` graph is kept between products and every module ``torch.func`` can
    differentiate works (LayerNorm, attention, custom modules, models returning their own
    loss with ``loss_fn=None``). See :class:`CurvatureOperator` for the arguments.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = model.weight.fill_(1.0)
        >>> x, y = torch.eye(2), torch.zeros(2, 1)
        >>> H = HessianOperator(model, nn.MSELoss(), (x, y))  # L = mean((w.x)^2) -> H = I
        >>> H @ torch.tensor([1.0, 2.0])
        tensor([1., 2.])
    """

    def _product(self, tangent: Params, batch: Batch) -> Params:
        inputs, targets = batch
        zero = self.zero_target_tangent(targets)
        if zero is None:
            g = grad(lambda p: self.loss(p, batch))
            return jvp(g, (self.params,), (tangent,))[1]
        g_t = grad(lambda p, t: self.loss(p, (inputs, t)))
        return jvp(g_t, (self.params, targets), (tangent, zero))[1]
