r"""OptEx: first-order optimization with approximately parallelized iterations.

One OptEx iteration stands in for :math:`N` sequential gradient steps. From the current
iterate :math:`\theta_{t,0} = \theta_{t-1}`, it first runs :math:`N-1` cheap *proxy* steps with
the kernelized gradient estimate :math:`\mu` (GP posterior mean over the gradient history,
:mod:`trainlab.optim.estimators.kernel_gradient`),

.. math::  \theta_{t,s} = \theta_{t,s-1} - \eta\, \mu(\theta_{t,s-1}), \quad s = 1..N-1,

then evaluates the true gradient at all :math:`N` points in parallel and takes
:math:`\theta_t = \theta_{t,N-1} - \eta\, \nabla f(\theta_{t,N-1})`. All :math:`N` evaluated
pairs join the history (the last ``history`` are kept). With an exact gradient oracle in place
of :math:`\mu`, one OptEx iteration is exactly :math:`N` steps of gradient descent (tested).
Until the history holds ``warmup`` points the proxies are skipped
(one plain step).

The :math:`N` true gradients are one batched evaluation (:func:`parallel_gradients`):
``torch.func.vmap`` of ``grad_and_value`` over the stacked points, through the closure's
functional form. Closures from :func:`trainlab.optim.loss_closure.make_closure` have one
(``functional_call`` on their model); any closure may offer one as ``closure.loss_at(tensors)``
(the loss as a pure function of one tensor per parameter). A closure without it, or a model
in training mode with buffers (batch-norm statistics cannot be updated inside ``vmap``), is
evaluated point after point, with a warning on the ``trainlab`` logger, as is one whose
functional form ``vmap`` rejects (``.item()`` or data-dependent branches in the loss). Both
paths give the same iterates (tested).

References:
    Shu, Fang, He, Yu. "OptEx: Expediting First-Order Optimization with Approximately
    Parallelized Iterations", NeurIPS 2024 (papers.md row 72).

Deviations from the paper:
    The base first-order method is plain gradient descent (the paper also wraps Adam and
    others); the :math:`N` gradients are vectorized on one device rather than spread over
    :math:`N` workers (the wall-time gain is vectorization's, not :math:`N`-fold); the kernel
    lengthscale defaults to the history's median pairwise distance instead of being fitted.
    The authors' code (youyve/OptEx) also differs from this reading of the paper: a Matern
    kernel on normalised inputs, re-fitted on a random split, and the best of the parallel
    iterates kept; neither is done here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch.func import functional_call, grad_and_value, vmap

from trainlab.errors import check_choice, check_range
from trainlab.optim._outer import ClosureOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.closure_curvature import flat, split_like
from trainlab.optim.estimators.kernel_gradient import KERNELS, kernel_gradient
from trainlab.optim.loss_closure import LossClosure, evaluate, set_grads

LOG = logging.getLogger("trainlab")
LossAt = Callable[[list[torch.Tensor]], torch.Tensor]


def functional_loss(closure: Callable[[], torch.Tensor]) -> LossAt | None:
    """The closure's loss as a pure function of one tensor per parameter, for ``vmap``:
    ``closure.loss_at`` when it has one, ``functional_call`` on a :class:`LossClosure`'s model
    (eval mode, or no buffers), else ``None``."""
    own = getattr(closure, "loss_at", None)
    if own is not None:
        return own
    if not isinstance(closure, LossClosure):
        return None
    model = closure.model
    buffers = dict(model.named_buffers())
    if model.training and buffers:
        return None
    names = closure._names

    def loss_at(tensors: list[torch.Tensor]) -> torch.Tensor:
        out = functional_call(model, (dict(zip(names, tensors)), buffers), (closure.inputs,))
        return closure.loss_fn(out, closure.targets)
    return loss_at


def parallel_gradients(closure: Callable[[], torch.Tensor], params: Sequence[torch.Tensor],
                       points: torch.Tensor, *, vectorize: bool = True, warn: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Losses ``(N,)`` and gradients ``(N, d)`` of the closure at the flat ``points`` ``(N, d)``.

    One ``vmap`` of ``grad_and_value`` over the rows when the closure has a functional form
    (:func:`functional_loss`) and ``vectorize``; else one closure call per row (warned when
    ``vectorize`` asked for the batch and ``warn``). The parameters are restored bit-exactly;
    ``p.grad`` is left as the sequential path's last call wrote it (callers restore it).
    """
    loss_at = functional_loss(closure) if vectorize else None
    if loss_at is not None:
        def one(theta: torch.Tensor) -> torch.Tensor:
            return loss_at(split_like(theta, params))
        try:
            with torch.enable_grad():
                grads, losses = vmap(grad_and_value(one), randomness="different")(points)
            return losses.detach(), grads.detach()
        except RuntimeError as err:  # e.g. .item() or data-dependent control flow in the loss
            if warn:
                LOG.warning("parallel_gradients: the closure's functional form cannot be "
                            "vmapped (%s); evaluating %d points one after the other",
                            str(err).splitlines()[0], len(points))
            warn = False
    if vectorize and warn:
        LOG.warning("parallel_gradients: the closure has no functional form (loss_at, or a "
                    "make_closure model in eval mode or without buffers); evaluating %d "
                    "points one after the other", len(points))
    saved = [p.detach().clone() for p in params]
    losses, grads = [], []
    try:
        for point in points:
            with torch.no_grad():
                for p, v in zip(params, split_like(point, params)):
                    p.copy_(v)
            loss, g = evaluate(closure, params)
            losses.append(loss.reshape(()))
            grads.append(flat(g))
    finally:
        with torch.no_grad():
            for p, w in zip(params, saved):
                p.copy_(w)
    return torch.stack(losses), torch.stack(grads)


class OptEx(ClosureOptimizer):
    """OptEx over gradient descent (module docstring).

    Args:
        params: parameters (one global history over all groups).
        lr: gradient-descent step ``eta`` >= 0.
        parallelism: ``N`` >= 1 (1: plain gradient descent).
        history: number of (point, gradient) pairs kept for the kernel estimate.
        warmup: history size below which proxies are skipped.
        kernel, lengthscale, noise: the GP of the gradient estimate.

    State keys: ``points``, ``grads`` (the history, ``m x d``).
    """

    joint_hypers = "all"
    joint_step = True

    def __init__(self, params: Iterable[Any], lr: float = 0.1, parallelism: int = 4,
                 history: int = 20, warmup: int = 2, kernel: str = "matern52",
                 lengthscale: float | None = None, noise: float = 1e-6,
                 vectorize: bool = True):
        owner = "OptEx"
        check_range("lr", lr, low=0.0, owner=owner)
        check_range("parallelism", parallelism, low=1, owner=owner)
        check_range("history", history, low=1, owner=owner)
        check_range("warmup", warmup, low=1, owner=owner)
        check_range("noise", noise, low=0.0, owner=owner)
        if lengthscale is not None:
            check_range("lengthscale", lengthscale, low=0.0, low_open=True, owner=owner)
        check_choice("kernel", kernel, KERNELS, owner="OptEx")
        super().__init__(params, dict(lr=lr, parallelism=parallelism, history=history,
                                      warmup=warmup, kernel=kernel, lengthscale=lengthscale,
                                      noise=noise, vectorize=bool(vectorize)))

    def estimate(self, theta: torch.Tensor) -> torch.Tensor:
        """The proxy gradient at the flat point ``theta`` (kernelized estimate)."""
        h = self.param_groups[0]
        state = self.state[self._params()[0]]
        return kernel_gradient(state["points"], state["grads"], theta, kernel=h["kernel"],
                               lengthscale=h["lengthscale"], noise=h["noise"])

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        closure = self._require(closure)
        params = self._params()
        h = self.param_groups[0]
        state = self.state[params[0]]
        theta = flat([p.detach() for p in params])
        points = [theta]
        if "points" in state and len(state["points"]) >= h["warmup"]:
            for _ in range(h["parallelism"] - 1):
                points.append(points[-1] - h["lr"] * self.estimate(points[-1]))
        losses, values = parallel_gradients(closure, params, torch.stack(points),
                                            vectorize=h["vectorize"],
                                            warn=not getattr(self, "_warned", False))
        self._warned = True  # a fallback is warned once per optimizer, at its first step
        loss, grads = losses[0], split_like(values[0], params)
        new = points[-1] - h["lr"] * values[-1]
        for p, v in zip(params, split_like(new, params)):
            p.copy_(v)
        old_x = state.get("points", theta.new_zeros(0, theta.numel()))
        old_g = state.get("grads", theta.new_zeros(0, theta.numel()))
        state["points"] = torch.cat([old_x, torch.stack(points)])[-h["history"]:]
        state["grads"] = torch.cat([old_g, values])[-h["history"]:]
        set_grads(params, grads)
        return loss


def optex(params: Iterable[Any], lr: float = 0.1, parallelism: int = 4, history: int = 20,
          warmup: int = 2, kernel: str = "matern52", lengthscale: float | None = None,
          noise: float = 1e-6, vectorize: bool = True) -> OptEx:
    """OptEx: N approximately parallelized GD iterations per step via kernelized gradients."""
    return OptEx(params, lr=lr, parallelism=parallelism, history=history, warmup=warmup,
                 kernel=kernel, lengthscale=lengthscale, noise=noise, vectorize=vectorize)


OPTIMIZERS.register("optex", optex, papers=(72,),
                    summary="OptEx: N approximately parallelized GD iterations per step from a "
                            "kernelized gradient estimate")
