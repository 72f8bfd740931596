"""GradFix (row 45): the mask written out, majority voting, and the first-order descent
guarantee on a small network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.optim.procedures.gradient_sign_masking import (
    descent_signs,
    gradient_sign_mask,
    transport_task_vector,
)


def test_mask_keeps_exactly_the_sign_agreeing_coordinates():
    tau = [torch.tensor([1.0, -2.0, 3.0, -4.0, 0.5])]
    grad = [torch.tensor([-1.0, -1.0, 2.0, 3.0, 0.0])]  # descent signs: +, +, -, -, 0
    masked = gradient_sign_mask(tau, descent_signs(grad))
    torch.testing.assert_close(masked[0], torch.tensor([1.0, 0.0, 0.0, -4.0, 0.0]))


def test_majority_vote_differs_from_mean_sign():
    per_sample = [torch.tensor([[1.0], [1.0], [-10.0]])]  # majority says -, the mean sign says +
    assert descent_signs(per_sample, "majority")[0].item() == -1.0
    per_sample = [torch.tensor([[-1.0], [-1.0], [10.0]])]  # mean says -, majority says +
    assert descent_signs(per_sample, "majority")[0].item() == 1.0
    assert descent_signs([per_sample[0].mean(0)], "mean")[0].item() == -1.0


def test_transported_vector_is_a_first_order_descent_direction():
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x = torch.randn(16, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (16,), generator=g)
    params = list(net.parameters())
    loss = nn.functional.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, params)
    tau = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params]
    new = transport_task_vector(params, tau, grads, alpha=1e-4)
    masked = [(n - p.detach()) / 1e-4 for n, p in zip(new, params)]
    inner = sum(float((gr * m).sum()) for gr, m in zip(grads, masked))
    naive = sum(float((gr * t).sum()) for gr, t in zip(grads, tau))
    assert inner < 0
    assert inner <= naive or naive < 0
    with torch.no_grad():
        for p, n in zip(params, new):
            p.copy_(n)
    assert float(nn.functional.cross_entropy(net(x), y).detach()) < float(loss.detach())


def test_validation():
    with pytest.raises(ConfigError, match="vote"):
        descent_signs([torch.zeros(2)], "median")
    with pytest.raises(ConfigError, match="alpha"):
        transport_task_vector([torch.zeros(2)], [torch.zeros(2)], [torch.zeros(2)], alpha=0.0)
    with pytest.raises(ConfigError, match="shape"):
        gradient_sign_mask([torch.zeros(2)], [torch.zeros(3)])
