r"""Sharpness of the gradient-flow solution (GFS) reached from the current parameters.

"Gradient Descent Monotonically Decreases the Sharpness of Gradient Flow Solutions in Scalar
Networks and Beyond" (Kreisler, Nacson, Soudry & Carmon, ICML 2023; papers.md row 36): the
sharpness itself oscillates at the edge of stability, but the sharpness of the minimum that
gradient flow :math:`\dot w = -\nabla L(w)` would reach if started from the current iterate,
:math:`\lambda_{max}(\nabla^2 L(\mathrm{GF}_\infty(w_t)))`, decreases monotonically along
gradient descent (proved for scalar networks :math:`f(x) = \prod_i w_i\,x` with the square
loss, observed on practical networks).

:func:`gradient_flow` integrates the flow with the adaptive Bogacki-Shampine 3(2) Runge-Kutta
pair (step size from the embedded error estimate, and at most the inverse of the secant
curvature along the last step, so that the stiff directions near a minimum keep decaying) on
the flat parameter vector, gradients from ``torch.func``, and stops at a gradient-norm
tolerance or an evaluation budget. :func:`gfs_sharpness` adds the top Hessian eigenvalue at
the end point (Lanczos on :class:`~trainlab.curvature.HessianOperator`).

Deviations: the paper integrates the flow on the full training set; the probe uses the step's
batch (pass a bigger batch to :func:`gfs_sharpness` for the full-batch quantity). A flow that
does not reach the tolerance within the budget (e.g. cross-entropy, whose minimum is at
infinity) is reported with ``gfs/converged = 0`` and the sharpness where it stopped.
Under dropout in training mode the flow and the Hessian use one fixed draw of the masks
(:class:`~trainlab.curvature.randomness.FixedRandomness`), the same for both: the flow of the
training loss for that draw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad

from trainlab.curvature import (
    EigenResult,
    flatten,
    lanczos,
    trainable_params,
    unflatten,
)
from trainlab.curvature.randomness import FixedRandomness
from trainlab.curvature.training_hessian import training_hessian
from trainlab.errors import check_range
from trainlab.restore import preserved

LossFn = Callable[[torch.Tensor, Any], torch.Tensor]


@dataclass(frozen=True)
class FlowSolution:
    """End point of a gradient-flow integration.

    Attributes:
        params: the parameters reached, by name (detached).
        loss, grad_norm: at the end point.
        time: flow time integrated.
        grad_evals: gradient evaluations used.
        converged: the gradient norm reached ``grad_tol``.
    """

    params: dict[str, torch.Tensor]
    loss: float
    grad_norm: float
    time: float
    grad_evals: int
    converged: bool


@dataclass(frozen=True)
class GFSSharpness:
    """Top Hessian eigenvalue at the gradient-flow solution, with the flow, the eigenvector
    (a warm start for the next measurement) and the Lanczos result (residual, converged)."""

    value: float
    vector: torch.Tensor
    flow: FlowSolution
    eigen: EigenResult


def gradient_flow(model: nn.Module, loss_fn: LossFn, batch: tuple[Any, Any], *,
                  params: dict[str, torch.Tensor] | None = None, grad_tol: float = 1e-5,
                  max_evals: int = 2000, rtol: float = 1e-6, atol: float = 1e-9
                  ) -> FlowSolution:
    r"""Integrate :math:`\dot w = -\nabla L(w)` for the batch loss from ``params`` (default:
    the model's trainable parameters) until :math:`\|\nabla L\| \le` ``grad_tol``.

    Args:
        grad_tol: absolute tolerance on the gradient norm, > 0.
        max_evals: budget of gradient evaluations (3 per accepted step), >= 4.
        rtol, atol: local error tolerance per step,
            :math:`\|e\|_\infty \le` ``atol + rtol * |w|``.

    The model is not modified: its buffers are copied (BatchNorm statistics stay as they
    were) and the global RNG is restored. Stochastic layers draw one fixed set of masks,
    replayed at every evaluation (the global RNG state at the call).
    """
    check_range("grad_tol", grad_tol, low=0.0, low_open=True, owner="gradient_flow")
    check_range("max_evals", max_evals, low=4, owner="gradient_flow")
    check_range("rtol", rtol, low=0.0, low_open=True, owner="gradient_flow")
    check_range("atol", atol, low=0.0, low_open=True, owner="gradient_flow")
    start = trainable_params(model) if params is None else {
        n: p.detach() for n, p in params.items()}
    inputs, targets = batch
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    with preserved(model):
        buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
        masks = FixedRandomness(next(iter(start.values())).device)

        def loss_at(flat: torch.Tensor) -> torch.Tensor:
            with masks.replay():  # fresh buffers: BatchNorm may update them in place
                out = functional_call(model, (unflatten(flat, start),
                                              {n: b.clone() for n, b in buffers.items()}), args)
            return loss_fn(out, targets)

        grad_fn = grad(loss_at)
        w = flatten(start).clone()
        g = grad_fn(w)
        evals, t = 1, 0.0
        gnorm = float(g.norm())
        # initial step: a fraction of the time scale 1/|g| on the parameter scale
        h = 0.01 * max(float(w.abs().max()), 1.0) / max(gnorm, 1e-30)
        while gnorm > grad_tol and evals + 3 <= max_evals:
            k1 = -g
            k2 = -grad_fn(w + 0.5 * h * k1)
            k3 = -grad_fn(w + 0.75 * h * k2)
            w3 = w + h * (2 * k1 + 3 * k2 + 4 * k3) / 9
            g4 = grad_fn(w3)
            evals += 3
            err = h * (-5 * k1 / 72 + k2 / 12 + k3 / 9 + g4 / 8)  # 3rd minus 2nd order (k4=-g4)
            scale = atol + rtol * torch.maximum(w.abs(), w3.abs())
            ratio = float((err.abs() / scale).max())
            h_new = h * min(5.0, max(0.2, 0.9 * max(ratio, 1e-10) ** (-1 / 3)))
            if ratio <= 1.0:
                # secant curvature along the step: near a minimum the error estimate alone
                # lets h sit at the stability edge, where the stiff modes barely decay
                curv = float((g4 - g).norm()) / max(float((w3 - w).norm()), 1e-300)
                w, g, t = w3, g4, t + h
                gnorm = float(g.norm())
                if curv > 0:
                    h_new = min(h_new, 1.0 / curv)
            h = h_new
        loss = float(loss_at(w).detach())
    end = {n: v.detach().clone() for n, v in unflatten(w, start).items()}
    return FlowSolution(end, loss, gnorm, t, evals, gnorm <= grad_tol)


def gfs_sharpness(model: nn.Module, loss_fn: LossFn, batch: tuple[Any, Any], *,
                  grad_tol: float = 1e-5, max_evals: int = 2000, rtol: float = 1e-6,
                  atol: float = 1e-9, eig_tol: float = 1e-6, v0: torch.Tensor | None = None,
                  generator: torch.Generator | None = None,
                  run_cache: dict[str, Any] | None = None,
                  max_iter: int | None = None) -> GFSSharpness:
    """Top Hessian eigenvalue of the batch loss at the gradient-flow solution from the
    model's current parameters (:func:`gradient_flow`, then Lanczos with ``eig_tol`` on
    :func:`~trainlab.curvature.training_hessian`, at most ``max_iter`` products,
    default :func:`~trainlab.curvature.lanczos`'s; ``run_cache`` keeps its fallback warning
    to one per run)."""
    flow = gradient_flow(model, loss_fn, batch, grad_tol=grad_tol, max_evals=max_evals,
                         rtol=rtol, atol=atol)
    with preserved(model):
        # the operator works on copies of the buffers: BatchNorm statistics stay as found
        # the same masks as the flow: both replay the global RNG state of this call
        op = training_hessian(model, loss_fn, batch, flow.params, run_cache=run_cache)
        eig = lanczos(op, k=1, tol=eig_tol, v0=v0, generator=generator,
                      max_iter=None if max_iter is None else min(max_iter, op.dim))
    return GFSSharpness(float(eig.values[0]), eig.vectors[:, 0].detach(), flow, eig)
