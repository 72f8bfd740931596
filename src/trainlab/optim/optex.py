r"""OptEx: first-order optimization with approximately parallelized iterations.

One OptEx iteration stands in for :math:`N` sequential gradient steps. From the current
iterate :math:`\theta_{t,0} = \theta_{t-1}`, it first runs :math:`N-1` cheap *proxy* steps with
the kernelized gradient estimate :math:`\mu` (GP posterior mean over the gradient history,
:mod:`trainlab.optim.estimators.kernel_gradient`),

.. math::  \theta_{t,s} = \theta_{t,s-1} - \eta\, \mu(\theta_{t,s-1}), \quad s = 1..N-1,

then evaluates the true gradient at all :math:`N` points (in parallel in the paper; one after
the other here) and takes :math:`\theta_t = \theta_{t,N-1} - \eta\, \nabla f(\theta_{t,N-1})`. All
:math:`N` evaluated pairs join the history (the last ``history`` are kept). With an exact
gradient oracle in place of :math:`\mu`, one OptEx iteration is exactly :math:`N` steps of
gradient descent (tested). Until the history holds ``warmup`` points the proxies are skipped
(one plain step).

References:
    Shu, Fang, He, Yu. "OptEx: Expediting First-Order Optimization with Approximately
    Parallelized Iterations", NeurIPS 2024 (papers.md row 72).

Deviations from the paper:
    The base first-order method is plain gradient descent (the paper also wraps Adam and
    others); the :math:`N` true gradients are computed sequentially, so wall time per step is
    :math:`N` gradients, not one; the kernel lengthscale defaults to the history's median
    pairwise distance instead of being fitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from trainlab.errors import check_choice, check_range
from trainlab.optim._outer import ClosureOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.closure_curvature import flat, split_like
from trainlab.optim.estimators.kernel_gradient import KERNELS, kernel_gradient
from trainlab.optim.loss_closure import evaluate, set_grads


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
                 lengthscale: float | None = None, noise: float = 1e-6):
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
                                      noise=noise))

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
        loss, grads = evaluate(closure, params)
        values = [flat(grads)]
        for point in points[1:]:  # the "parallel" true gradients
            for p, v in zip(params, split_like(point, params)):
                p.copy_(v)
            values.append(flat(evaluate(closure, params)[1]))
        new = points[-1] - h["lr"] * values[-1]
        for p, v in zip(params, split_like(new, params)):
            p.copy_(v)
        old_x = state.get("points", theta.new_zeros(0, theta.numel()))
        old_g = state.get("grads", theta.new_zeros(0, theta.numel()))
        state["points"] = torch.cat([old_x, torch.stack(points)])[-h["history"]:]
        state["grads"] = torch.cat([old_g, torch.stack(values)])[-h["history"]:]
        set_grads(params, grads)
        return loss


def optex(params: Iterable[Any], lr: float = 0.1, parallelism: int = 4, history: int = 20,
          warmup: int = 2, kernel: str = "matern52", lengthscale: float | None = None,
          noise: float = 1e-6) -> OptEx:
    """OptEx: N approximately parallelized GD iterations per step via kernelized gradients."""
    return OptEx(params, lr=lr, parallelism=parallelism, history=history, warmup=warmup,
                 kernel=kernel, lengthscale=lengthscale, noise=noise)


OPTIMIZERS.register("optex", optex, papers=(72,),
                    summary="OptEx: N approximately parallelized GD iterations per step from a "
                            "kernelized gradient estimate")
