"""The one closure contract shared by trainlab's multi-pass optimizers.

A method that needs more than the gradient at the current weights (weight prediction,
extragradient, line searches, Polyak steps, SAM/GAM, gradient regularization, Entropy-SGD,
PSGD, DASA, saddle-free Newton, natural gradient, regularized Newton, OptEx) takes a
``closure``, as ``torch.optim.LBFGS`` does:

* ``closure()`` zeroes the gradients, runs the forward pass on the *current* values of the
  parameters and the *same* batch every time it is called within one step, calls
  ``backward()``, and returns the loss (a tensor). It must not step an optimizer. (A method
  that wants a fresh minibatch per call, such as Entropy-SGD's inner Langevin loop, says so
  in its docstring.)
* The optimizer may call it several times per step and may change the parameters between
  calls; it restores every parameter it moved before applying its own update, so after
  ``step`` the weights are the optimizer's new iterate. ``step`` returns the loss of the
  first call.
* ``p.grad`` after ``step``: the optimizers of :mod:`trainlab.optim` issue 6 (SAM, GAM,
  gradient regularization, Entropy-SGD and the curvature methods) write back the gradient of
  the *first* call, the one at the pre-step weights, so a probe reading ``p.grad`` after the
  step sees the same thing as after ``loss.backward(); sgd.step()``. Where an optimizer
  leaves the gradient of a later call instead, its docstring says so.
* Optimizers that need it set the class attribute ``requires_closure = True`` (an instance
  may set it for its own configuration, as ``gd`` with ``step_rule="polyak"`` does); the
  registry and every caller read it through :func:`trainlab.optim.optimizer_info`. Their
  ``step()`` without a closure raises :class:`~trainlab.errors.ConfigError`.
* Curvature (optional): a closure may also offer ``hvp(vectors)`` (Hessian-vector product)
  and ``ggn_vp(vectors)`` (generalized Gauss-Newton, the Fisher for cross-entropy and squared
  error), one tensor per parameter in, one out, at the current weights.
  :func:`trainlab.optim.loss_closure.make_closure` builds a closure with both (exact, via
  ``torch.func``); a method needing an HVP from a plain closure uses a central finite
  difference of two closure gradients instead.

Example:

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    # or: loss = optimizer.step(make_closure(model, loss_fn, x, y))
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Closure = Callable[[], torch.Tensor]


def call_closure(closure: Closure | None) -> torch.Tensor | None:
    """Call ``closure`` with gradients enabled (``step`` runs under ``no_grad``); ``None``
    when there is no closure."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()
