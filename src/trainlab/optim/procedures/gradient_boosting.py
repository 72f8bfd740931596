r"""Gradient boosting of the last layers: a one-hidden-layer head trained as an additive
expansion.

The head's output is :math:`F(z) = b_0 + \sum_{t=1}^{T} \nu \rho_t\, h_t(z)`, with
:math:`h_t(z) = W_t\, \phi(A_t z + c_t) + d_t` a block of :math:`J` hidden units and
:math:`z` the features (the input, or the output of a frozen ``body``). Training is
sequential:

1. :math:`b_0` is the constant minimizing the average loss (the target mean for squared
   error, the log class frequencies for cross-entropy);
2. at step :math:`t`, the pseudo-residuals :math:`r_i = -\partial \ell(y_i, F)/\partial F`
   at :math:`F = F_{t-1}(z_i)` are computed, a fresh block :math:`h_t` is fit to them by least
   squares (full-batch Adam for ``fit_steps`` steps), :math:`\rho_t \ge 0` minimizes
   :math:`\sum_i \ell(y_i, F_{t-1}(z_i) + \rho h_t(z_i))` (closed form for squared error, 1-D
   Newton for cross-entropy) and the block enters with shrinkage :math:`\nu`;
3. the :math:`T` blocks are integrated into one ``nn.Sequential`` head with :math:`T \cdot J`
   hidden units (output weights :math:`\nu\rho_t W_t`, output bias
   :math:`b_0 + \sum_t \nu\rho_t d_t`), which computes exactly the expansion; keeping only
   the first :math:`t J` hidden units gives the stage-:math:`t` model.

With a convex loss every stage lowers the training loss (``rho = 0`` is admissible and the
loss is convex along the new direction).

References:
    Emami, Martínez-Muñoz. "Sequential Training of Neural Networks with Gradient Boosting",
    IEEE Access 2023 (papers.md row 41).

Deviations from the paper:
    The weak-learner optimizer (Adam), its step count, ``units``, ``steps`` and ``shrinkage``
    defaults are choices of this implementation, not values re-read from the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import check_choice, check_range

LOSSES = ("mse", "cross_entropy")


def pseudo_residuals(outputs: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """``-d loss_i / d F_i`` per example (squared error ``0.5 ||F - y||^2``; cross-entropy
    with integer class targets)."""
    if loss == "mse":
        return targets - outputs
    return F.one_hot(targets, outputs.shape[-1]).to(outputs.dtype) - outputs.softmax(-1)


def _mean_loss(outputs: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "mse":
        return 0.5 * ((outputs - targets) ** 2).sum(-1).mean()
    return F.cross_entropy(outputs, targets)


def _initial_bias(targets: torch.Tensor, loss: str, num_outputs: int, dtype: torch.dtype
                  ) -> torch.Tensor:
    if loss == "mse":
        return targets.to(dtype).mean(0)
    counts = torch.bincount(targets, minlength=num_outputs).to(dtype)
    return torch.log(counts.clamp_min(1.0) / counts.sum())


def _line_search(base: torch.Tensor, direction: torch.Tensor, targets: torch.Tensor,
                 loss: str, newton_steps: int = 20) -> float:
    """``argmin_{rho >= 0} loss(base + rho * direction)``."""
    if loss == "mse":
        den = float((direction ** 2).sum())
        return max(float(((targets - base) * direction).sum()) / den, 0.0) if den > 0 else 0.0
    rho = torch.zeros((), dtype=base.dtype, requires_grad=True)
    for _ in range(newton_steps):
        with torch.enable_grad():
            val = _mean_loss(base + rho * direction, targets, loss)
            (g,) = torch.autograd.grad(val, rho, create_graph=True)
            (h,) = torch.autograd.grad(g, rho)
        with torch.no_grad():
            step = g / h.clamp_min(1e-12)
            rho = (rho - step).clamp_min(0.0).detach().requires_grad_(True)
        if abs(float(step)) < 1e-10:
            break
    return float(rho.detach())


@dataclass(frozen=True)
class BoostedHead:
    """Result of :func:`gradient_boost_head`.

    Attributes:
        head: the integrated ``nn.Sequential(Linear(d, T*J), activation, Linear(T*J, k))``.
        bias0: the initial constant ``b_0``.
        block_biases: each block's output bias times ``nu * rho_t`` (``T x k``).
        rhos: line-search multipliers ``rho_t``.
        losses: training loss after each stage (index 0: the constant model).
        units: hidden units per block ``J``.
    """

    head: nn.Sequential
    bias0: torch.Tensor
    block_biases: torch.Tensor
    rhos: list[float]
    losses: list[float]
    units: int

    def truncated(self, stages: int) -> nn.Sequential:
        """The head of the first ``stages`` blocks (the later hidden units switched off),
        ``1 <= stages <= T`` (stage 0 is the constant ``bias0``)."""
        check_range("stages", stages, low=1, high=len(self.rhos), owner="BoostedHead")
        first, act, last = self.head
        keep = stages * self.units
        new_first = nn.Linear(first.in_features, keep).to(first.weight.dtype)
        new_last = nn.Linear(keep, last.out_features).to(last.weight.dtype)
        with torch.no_grad():
            new_first.weight.copy_(first.weight[:keep])
            new_first.bias.copy_(first.bias[:keep])
            new_last.weight.copy_(last.weight[:, :keep])
            new_last.bias.copy_(self.bias0 + self.block_biases[:stages].sum(0))
        return nn.Sequential(new_first, act, new_last)


def gradient_boost_head(features: torch.Tensor, targets: torch.Tensor, num_outputs: int, *,
                        loss: Literal["mse", "cross_entropy"] = "mse", steps: int = 20,
                        units: int = 2, shrinkage: float = 0.5, fit_steps: int = 200,
                        fit_lr: float = 1e-2,
                        activation: Callable[[], nn.Module] = nn.Tanh,
                        generator: torch.Generator | None = None) -> BoostedHead:
    """Train a one-hidden-layer head on ``features`` by gradient boosting (module
    docstring); ``features`` is ``n x d`` (run a frozen body first for the last layers of a
    deep network)."""
    check_choice("loss", loss, LOSSES, owner="gradient_boost_head")
    check_range("steps", steps, low=1, owner="gradient_boost_head")
    check_range("units", units, low=1, owner="gradient_boost_head")
    check_range("shrinkage", shrinkage, low=0.0, high=1.0, low_open=True,
                owner="gradient_boost_head")
    check_range("fit_steps", fit_steps, low=1, owner="gradient_boost_head")
    z = features.detach()
    dtype, d = z.dtype, z.shape[1]
    bias0 = _initial_bias(targets, loss, num_outputs, dtype)
    outputs = bias0.expand(z.shape[0], num_outputs).clone()
    losses = [float(_mean_loss(outputs, targets, loss))]
    blocks, rhos = [], []
    for _ in range(steps):
        residual = pseudo_residuals(outputs, targets, loss)
        block = nn.Sequential(nn.Linear(d, units), activation(), nn.Linear(units, num_outputs))
        block = block.to(dtype)
        with torch.no_grad():
            for p in block.parameters():
                bound = (p.shape[-1] if p.ndim == 2 else d) ** -0.5
                u = torch.rand(p.shape, generator=generator, dtype=dtype)
                p.copy_((2 * u - 1) * bound)
        opt = torch.optim.Adam(block.parameters(), lr=fit_lr)
        for _ in range(fit_steps):
            opt.zero_grad()
            with torch.enable_grad():
                ((block(z) - residual) ** 2).sum(-1).mean().backward()
            opt.step()
        with torch.no_grad():
            direction = block(z)
        rho = _line_search(outputs, direction, targets, loss)
        outputs = outputs + shrinkage * rho * direction
        losses.append(float(_mean_loss(outputs, targets, loss)))
        blocks.append(block)
        rhos.append(rho)
    first = nn.Linear(d, steps * units).to(dtype)
    last = nn.Linear(steps * units, num_outputs).to(dtype)
    with torch.no_grad():
        first.weight.copy_(torch.cat([b[0].weight for b in blocks]))
        first.bias.copy_(torch.cat([b[0].bias for b in blocks]))
        last.weight.copy_(torch.cat([shrinkage * r * b[2].weight for b, r in zip(blocks, rhos)],
                                    dim=1))
        block_biases = torch.stack([shrinkage * r * b[2].bias for b, r in zip(blocks, rhos)])
        last.bias.copy_(bias0 + block_biases.sum(0))
    return BoostedHead(nn.Sequential(first, activation(), last), bias0, block_biases.detach(),
                       rhos, losses, units)
