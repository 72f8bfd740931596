"""Full-batch gradient descent on the half mean squared error: the training loop several
phenomena share."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.optim import build_optimizer


def half_mse_gd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, lr: float,
                steps: int) -> tuple[float, float]:
    """Train ``model`` in place by ``steps`` full-batch SGD steps on
    :math:`\\tfrac12\\,\\mathrm{mean}(f(x) - y)^2`; returns the loss before the first step
    and after the last one (``nan``/``inf`` when the run diverged)."""
    opt = build_optimizer("sgd", model.parameters(), lr=lr)
    first = None
    for _ in range(steps):
        opt.zero_grad()
        loss = 0.5 * (model(x) - y).pow(2).mean()
        first = loss.item() if first is None else first
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = 0.5 * (model(x) - y).pow(2).mean().item()
    return (last if first is None else first), last
