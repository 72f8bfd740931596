"""Dense float64 references written from the definitions, and the tiny test models."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, hessian, jacrev

DT = torch.float64


def flat_names(model: nn.Module) -> list[tuple[str, torch.Size]]:
    return [(n, p.shape) for n, p in model.named_parameters()]


def split(model: nn.Module, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    out, i = {}, 0
    for n, shape in flat_names(model):
        k = shape.numel()
        out[n] = flat[i:i + k].reshape(shape)
        i += k
    return out


def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def dense_hessian(model, loss_fn, x, y) -> torch.Tensor:
    def f(flat):
        return loss_fn(functional_call(model, split(model, flat), (x,)), y)
    return hessian(f)(flat_params(model))


def dense_ggn(model, loss_fn, x, y) -> torch.Tensor:
    """J^T H_L J with J = d outputs / d params and H_L = d^2 loss / d outputs^2."""
    theta = flat_params(model)
    out = functional_call(model, split(model, theta), (x,))
    jac = jacrev(lambda flat: functional_call(model, split(model, flat), (x,)))(theta)
    jac = jac.reshape(out.numel(), -1)
    h_out = hessian(lambda o: loss_fn(o, y))(out).reshape(out.numel(), out.numel())
    return jac.T @ h_out @ jac


def dense_empirical_fisher(model, loss_fn, x, y) -> torch.Tensor:
    """(1/N) sum_n g_n g_n^T with g_n the gradient of the loss on sample n alone."""
    theta = flat_params(model)
    grads = []
    for n in range(x.shape[0]):
        def f(flat, n=n):
            return loss_fn(functional_call(model, split(model, flat), (x[n:n + 1],)), y[n:n + 1])
        grads.append(torch.func.grad(f)(theta))
    g = torch.stack(grads)
    return g.T @ g / x.shape[0]


def mlp(seed: int = 0, sizes=(5, 7, 3)) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers).to(DT)


def classification_batch(seed: int = 1, n: int = 12, d: int = 5, c: int = 3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=DT), torch.randint(0, c, (n,), generator=g)


def regression_batch(seed: int = 1, n: int = 12, d: int = 5, c: int = 3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=DT), torch.randn(n, c, generator=g, dtype=DT)


class TinyAttention(nn.Module):
    """LayerNorm + one softmax self-attention head + a linear readout, on (N, T, D) input."""

    def __init__(self, d: int = 4, t: int = 3, c: int = 2):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d * t, c)

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        att = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
        return self.out((att @ v + x).flatten(1))


class OwnLoss(nn.Module):
    """A model that computes its own loss: ``forward(x, y) -> scalar``."""

    def __init__(self):
        super().__init__()
        self.net = mlp(3, (4, 5, 2))

    def forward(self, x, y):
        return ((self.net(x) - y) ** 2).mean() + 0.1 * self.net(x).pow(4).mean()


def close_top_pair(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor,
                                                          torch.Tensor]:
    """A symmetric float64 matrix with eigenvalues 1.0 and 0.97 above a bulk in [0, 0.5]:
    (matrix, ascending eigenvalues, eigenvectors as columns)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))[0]
    spec = torch.cat([0.5 * torch.rand(n - 2, generator=g, dtype=DT),
                      torch.tensor([0.97, 1.0], dtype=DT)]).sort().values
    return (q * spec) @ q.T, spec, q
