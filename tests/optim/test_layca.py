"""Layca (row 56): against a float64 reference written from the authors' equations (project
the step on the tangent space, rescale it to the weight norm, step, put the weights back on
the sphere), the controlled angle arctan(lr), the norm kept, and the vector rule."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim import build_optimizer


def _reference(w: torch.Tensor, g: torch.Tensor, lr: float) -> torch.Tensor:
    n = w.norm()
    s = g - (g.flatten() @ w.flatten()) / n**2 * w
    new = w - lr * s / s.norm() * n
    return new / new.norm() * n


def test_matches_reference_and_turns_by_arctan_lr():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(5, 3, generator=g, dtype=torch.float64)
    w0 = w.detach().clone()
    w.grad = grad.clone()
    build_optimizer("layca", [w], lr=0.1).step()
    assert torch.allclose(w.detach(), _reference(w0, grad, 0.1), atol=1e-12)
    assert abs(w.detach().norm() - w0.norm()) < 1e-12
    cos = (w.detach().flatten() @ w0.flatten()) / w0.norm() ** 2
    assert abs(math.acos(cos.item()) - math.atan(0.1)) < 1e-10
    assert torch.equal(w.grad, grad)  # the gradient is left as computed


def test_vectors_sgd_or_frozen_and_bad_choice():
    w = torch.ones(3, requires_grad=True)
    w.grad = torch.ones(3)
    build_optimizer("layca", [w], lr=0.5).step()
    assert torch.allclose(w.detach(), torch.full((3,), 0.5))
    build_optimizer("layca", [w], lr=0.5, vectors="freeze").step()
    assert torch.allclose(w.detach(), torch.full((3,), 0.5))
    with pytest.raises(ConfigError, match="vectors"):
        build_optimizer("layca", [w], lr=0.1, vectors="adam")


def test_a_radial_step_leaves_the_weights_alone():
    w = torch.tensor([[3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    w.grad = 2 * w.detach().clone()
    build_optimizer("layca", [w], lr=0.3).step()
    assert torch.allclose(w.detach(), torch.tensor([[3.0, 4.0]], dtype=torch.float64))


def test_matches_the_authors_keras_sgd_over_a_run():
    """20 steps on a small MLP against the authors' SGD with layca=True and momentum 0
    (ispgroupucl/layer-rotation-paper-experiments, layca_optimizers.py: ``layca(p, -step,
    lr)`` with ``step = -lr g``, applied to kernels only, biases left untouched), restated
    in float64: the step lr g projected on the tangent space, rescaled to the kernel's norm,
    taken with rate lr, the kernel put back on its sphere."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(16, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(16, 2, generator=gen, dtype=torch.float64)
    ours = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(),
                               torch.nn.Linear(5, 2)).double()
    theirs = [p.detach().clone().requires_grad_(True) for p in ours.parameters()]
    opt = build_optimizer("layca", ours.parameters(), lr=0.2, vectors="freeze")
    lr = 0.2

    def loss_of(w1, b1, w2, b2):
        return ((torch.tanh(x @ w1.T + b1) @ w2.T + b2 - y) ** 2).mean()

    for _ in range(20):
        opt.zero_grad()
        loss_of(*ours.parameters()).backward()
        opt.step()
        grads = torch.autograd.grad(loss_of(*theirs), theirs)
        with torch.no_grad():
            for p, g in zip(theirs, grads):
                if p.ndim < 2:  # not a kernel
                    continue
                step = lr * g
                n0 = p.norm()
                step = step - (step * p).sum() * p / n0 ** 2
                new = p - lr * step / step.norm() * n0
                p.copy_(new / new.norm() * n0)
        for a, b in zip(ours.parameters(), theirs):
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-12, atol=1e-13)
