"""Shared float64 problems for the optimizer tests: a noisy smooth loss whose gradient any
reference recurrence can query, and a runner that feeds it to an optimizer."""

from __future__ import annotations

from collections.abc import Callable

import torch

SHAPES = ((3, 4), (5,))


def initial_params(seed: int = 0, shapes=SHAPES) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]


def loss_fn(params: list[torch.Tensor], t: int) -> torch.Tensor:
    """A smooth non-quadratic loss with a step-dependent linear "noise" term."""
    g = torch.Generator().manual_seed(1000 + t)
    total = torch.zeros((), dtype=torch.float64)
    for i, p in enumerate(params):
        target = torch.linspace(-1, 1, p.numel(), dtype=torch.float64).reshape(p.shape)
        noise = 0.1 * torch.randn(p.shape, generator=g, dtype=torch.float64)
        total = total + 0.5 * (i + 1) * ((p - target) ** 2).sum() + 0.1 * torch.sin(3 * p).sum()
        total = total + (noise * p).sum()
    return total


def grads_at(params: list[torch.Tensor], t: int) -> list[torch.Tensor]:
    """Gradient of ``loss_fn`` at (a copy of) ``params``."""
    ps = [p.detach().clone().requires_grad_(True) for p in params]
    return list(torch.autograd.grad(loss_fn(ps, t), ps))


def run(make_opt: Callable[[list[torch.Tensor]], torch.optim.Optimizer], steps: int,
        params: list[torch.Tensor] | None = None, start: int = 0,
        opt: torch.optim.Optimizer | None = None) -> tuple[list[torch.Tensor], object]:
    """Run ``steps`` steps of the optimizer on ``loss_fn``; returns (params, optimizer)."""
    if params is None:
        params = [p.requires_grad_(True) for p in initial_params()]
    opt = opt or make_opt(params)
    for t in range(start, start + steps):
        opt.zero_grad()
        loss_fn(params, t).backward()
        opt.step()
    return params, opt


def assert_close_lists(a, b, rtol=1e-6, atol=1e-10):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.detach(), y.detach(), rtol=rtol, atol=atol)


def decentralized_least_squares(workers: int = 6, dim: int = 5, samples: int = 8
                                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-worker least-squares data ``(a, b)`` with heterogeneous targets (worker ``i``'s
    targets are shifted by ``i``)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(workers, samples, dim, generator=g, dtype=torch.float64)
    b = torch.randn(workers, samples, generator=g, dtype=torch.float64)
    return a, b + torch.arange(workers)[:, None]


def decentralized_grad_fn(a: torch.Tensor, b: torch.Tensor
                          ) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """Row ``i`` of the result: gradient of ``0.5 * mean_j (a_ij x_i - b_ij)^2``."""
    def grad(x: torch.Tensor, t: int) -> torch.Tensor:
        r = torch.einsum("njd,nd->nj", a, x) - b
        return torch.einsum("njd,nj->nd", a, r) / a.shape[1]
    return grad
