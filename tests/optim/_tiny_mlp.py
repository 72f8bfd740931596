"""Tiny float64 problems shared by the closure, estimator and procedure tests."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call


def tiny_mlp(seed: int = 0, d_in: int = 3, width: int = 4, d_out: int = 2) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(d_in, width), nn.Tanh(), nn.Linear(width, d_out)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.7)
    return model


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * (out - y).pow(2).sum(dim=-1).mean()


def batch(seed: int = 1, n: int = 16, d_in: int = 3, d_out: int = 2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=g, dtype=torch.float64)
    y = torch.randn(n, d_out, generator=g, dtype=torch.float64)
    return x, y


def functional(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """``(f, w)``: the batch loss as a function of the flat parameter vector, and its value."""
    shapes = [(n, p.shape, p.numel()) for n, p in model.named_parameters()]

    def f(flat: torch.Tensor) -> torch.Tensor:
        params, i = {}, 0
        for n, shape, k in shapes:
            params[n] = flat[i:i + k].view(shape)
            i += k
        return mse(functional_call(model, params, (x,)), y)

    return f, flat_params(model)


def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def flat_grads(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def clone(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)
