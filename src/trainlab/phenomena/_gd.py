"""Full-batch gradient descent on the half mean squared error: the training loops several
phenomena share (one model, or many models of one architecture trained at once)."""

from __future__ import annotations

from collections.abc import Sequence

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


def half_mse_gd_stacked(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, *,
                        lrs: Sequence[float], steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`half_mse_gd` for R models of one architecture at once, model ``r`` at learning
    rate ``lrs[r]``: their parameters are stacked (``torch.func.stack_module_state``) and
    the forward pass is vmapped over them (``torch.func.functional_call``), so one step costs
    about what one model's step costs. Each run's loss depends only on its own slice of the
    stacked parameters, so the gradient of the sum of the R losses is, slice by slice, each
    run's own gradient, and the update ``p_r <- p_r - lrs[r] grad_r`` is plain SGD (what
    :func:`half_mse_gd` does), run by run. The models themselves are left unchanged (their
    stacked copies are trained). Returns the losses ``(R,)`` before the first step and after
    the last one (``nan``/``inf`` for a run that diverged; the others are unaffected)."""
    from torch.func import functional_call, stack_module_state, vmap

    if len(lrs) != len(models):
        raise ValueError(f"half_mse_gd_stacked: {len(lrs)} learning rates for "
                         f"{len(models)} models")
    params, buffers = stack_module_state(list(models))
    base = models[0]
    forward = vmap(lambda p, b, xx: functional_call(base, (p, b), (xx,)),
                   in_dims=(0, 0, None))
    dims = tuple(range(1, y.dim() + 1))

    def losses() -> torch.Tensor:
        return 0.5 * (forward(params, buffers, x) - y).pow(2).mean(dim=dims)

    # each parameter's learning rates, shaped to broadcast over its run axis (its device)
    rates = [torch.tensor(lrs, dtype=p.dtype, device=p.device).view(-1, *([1] * (p.dim() - 1)))
             for p in params.values()]
    first = None
    for _ in range(steps):
        per_run = losses()
        first = per_run.detach().clone() if first is None else first
        grads = torch.autograd.grad(per_run.sum(), list(params.values()))
        with torch.no_grad():
            for p, rate, grad in zip(params.values(), rates, grads, strict=True):
                p.sub_(rate * grad)
    with torch.no_grad():
        last = losses()
    return (last.clone() if first is None else first), last
