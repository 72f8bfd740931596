r"""The training Jacobian :math:`J = \partial\theta_T / \partial\theta_0` of full-batch gradient
descent, and its singular-value regions.

"Understanding Gradient Descent through the Training Jacobian" (Belrose & Scherlis, 2024;
papers.md row 102) differentiates the final parameters of a short training run with respect
to the initial ones. Its singular values split into a *bulk* near 1 (directions training
leaves as they were), a *stable* region below 1 (directions training contracts) and a
*chaotic* region above 1 (directions it amplifies). This module differentiates through
``steps`` plain GD steps with ``torch.func`` (reverse mode over the unrolled trajectory), so
it is meant for small networks: the Jacobian is dense, ``d x d``.

Deviation: the paper trains to convergence; the region boundaries are given here by a
tolerance ``tol`` around 1, a parameter rather than the paper's reading of its spectra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import grad, jacrev

from trainlab.curvature import flatten, loss_function, trainable_params, unflatten
from trainlab.errors import check_range


@dataclass(frozen=True)
class TrainingJacobian:
    """``jacobian`` (d x d), its ``singular_values`` (descending), the final parameters
    ``final`` (flat) and the counts of singular values above ``1 + tol`` (``chaotic``),
    within ``tol`` of 1 (``bulk``) and below ``1 - tol`` (``stable``)."""

    jacobian: torch.Tensor
    singular_values: torch.Tensor
    final: torch.Tensor
    chaotic: int
    bulk: int
    stable: int


def training_jacobian(model: nn.Module, loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
                      inputs: Any, targets: Any, *, lr: float, steps: int,
                      tol: float = 0.05) -> TrainingJacobian:
    """Jacobian of ``steps`` full-batch GD steps (learning rate ``lr``) on
    ``loss_fn(model(inputs), targets)``, started from the model's current parameters, with
    respect to those parameters. The model is not changed."""
    check_range("lr", lr, low=0.0, low_open=True, owner="training_jacobian")
    check_range("steps", steps, low=1, owner="training_jacobian")
    check_range("tol", tol, low=0.0, owner="training_jacobian")
    params = trainable_params(model)
    g = grad(loss_function(model, loss_fn, inputs, targets))

    def train(theta0: torch.Tensor) -> torch.Tensor:
        theta = theta0
        for _ in range(steps):
            theta = theta - lr * flatten(g(unflatten(theta, params)))
        return theta

    theta0 = flatten(params).clone()
    jac = jacrev(train)(theta0)
    with torch.no_grad():
        final = train(theta0)
    s = torch.linalg.svdvals(jac)
    return TrainingJacobian(jac, s, final, int((s > 1 + tol).sum()),
                            int(((s - 1).abs() <= tol).sum()), int((s < 1 - tol).sum()))
