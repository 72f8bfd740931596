"""Plain-autograd reference derivatives for the pinn tests (independent of torch.func)."""

import torch


def values_and_laplacians(fn, x):
    """``fn(x)`` ``(N, m)`` and the Laplacian of each column over all coordinates, by nested
    ``torch.autograd.grad``."""
    x = x.detach().clone().requires_grad_(True)
    b = fn(x)
    lap = torch.zeros_like(b)
    for j in range(b.shape[1]):
        (g,) = torch.autograd.grad(b[:, j].sum(), x, create_graph=True)
        for i in range(x.shape[1]):
            (h,) = torch.autograd.grad(g[:, i].sum(), x, retain_graph=True)
            lap[:, j] += h[:, i]
    return b.detach(), lap.detach()
