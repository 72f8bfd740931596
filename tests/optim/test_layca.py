"""Layca (row 56): against a float64 reference written from the authors' equations (project
the step on the tangent space, rescale it to the weight norm, step, put the weights back on
the sphere; the base optimizers' steps as in their Keras code: momentum as a velocity with the
learning rate inside, Adam with its bias-corrected rate and epsilon outside), the controlled
angle arctan(lr), the norm kept, and the vector rule."""

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


def test_vectors_step_or_frozen_and_bad_choices():
    w = torch.ones(3, requires_grad=True)
    w.grad = torch.ones(3)
    build_optimizer("layca", [w], lr=0.5).step()
    assert torch.allclose(w.detach(), torch.full((3,), 0.5))
    build_optimizer("layca", [w], lr=0.5, vectors="freeze").step()
    assert torch.allclose(w.detach(), torch.full((3,), 0.5))
    with pytest.raises(ConfigError, match="vectors"):
        build_optimizer("layca", [w], lr=0.1, vectors="adam")
    with pytest.raises(ConfigError, match="base.*'sgd', 'momentum', 'rmsprop', 'adam'"):
        build_optimizer("layca", [w], lr=0.1, base="lamb")


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


def _keras_steps(base: str, grads: list[torch.Tensor], lr: float, t: int, buf: dict,
                 **h: float) -> torch.Tensor:
    """The step the authors' Keras optimizer takes (lr included) at step t for gradient g."""
    g = grads[t - 1]
    if base == "momentum":
        v = h["momentum"] * buf.get("v", torch.zeros_like(g)) - lr * g
        buf["v"] = v
        return -(h["momentum"] * v - lr * g) if h.get("nesterov") else -v
    if base == "rmsprop":
        buf["a"] = h["alpha"] * buf.get("a", torch.zeros_like(g)) + (1 - h["alpha"]) * g * g
        return lr * g / (buf["a"].sqrt() + h["eps"])
    if base == "adagrad":
        buf["a"] = buf.get("a", torch.zeros_like(g)) + g * g
        return lr * g / (buf["a"].sqrt() + h["eps"])
    b1, b2 = h["betas"]
    buf["m"] = b1 * buf.get("m", torch.zeros_like(g)) + (1 - b1) * g
    buf["v"] = b2 * buf.get("v", torch.zeros_like(g)) + (1 - b2) * g * g
    lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
    return lr_t * buf["m"] / (buf["v"].sqrt() + h["eps"])


@pytest.mark.parametrize(("base", "hyper"), [
    ("momentum", {"momentum": 0.9}),
    ("momentum", {"momentum": 0.5, "nesterov": True}),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-7}),
    ("adagrad", {"eps": 1e-7}),
    ("adam", {"betas": (0.9, 0.999), "eps": 1e-7}),
])
def test_each_base_matches_the_authors_equations(base, hyper):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    grads_w = [torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(4)]
    grads_b = [torch.randn(3, generator=g, dtype=torch.float64) for _ in range(4)]
    w_init = w.detach().clone()
    ref_w, ref_b, buf_w, buf_b, lr = w.detach().clone(), b.detach().clone(), {}, {}, 0.05
    opt = build_optimizer("layca", [w, b], lr=lr, base=base, **hyper)
    for t in range(1, 5):
        w.grad, b.grad = grads_w[t - 1].clone(), grads_b[t - 1].clone()
        opt.step()
        ref_w = _reference(ref_w, _keras_steps(base, grads_w, lr, t, buf_w, **hyper), lr)
        ref_b = ref_b - _keras_steps(base, grads_b, lr, t, buf_b, **hyper)
    assert torch.allclose(w.detach(), ref_w, atol=1e-12)
    assert torch.allclose(b.detach(), ref_b, atol=1e-12)
    # the base matters: plain Layca-SGD on the same gradients ends elsewhere
    assert not torch.allclose(w.detach(), _sgd_layca_from(w_init, grads_w, lr), atol=1e-6)


def _sgd_layca_from(w0: torch.Tensor, grads: list[torch.Tensor], lr: float) -> torch.Tensor:
    w = w0.clone()
    for gr in grads:
        w = _reference(w, gr, lr)
    return w


def test_hyperparameters_per_group():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    c = torch.randn(3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    a0, c0 = a.detach().clone(), c.detach().clone()
    opt = build_optimizer("layca", [{"params": [a], "lr": 0.0},
                                    {"params": [c], "base": "adam", "lr": 0.2}], lr=0.1)
    for _ in range(2):
        a.grad = torch.randn(3, 3, generator=g, dtype=torch.float64)
        c.grad = torch.randn(3, 3, generator=g, dtype=torch.float64)
        opt.step()
    assert torch.equal(a.detach(), a0)  # lr 0 in its group: no rotation
    cos = (c.detach().flatten() @ c0.flatten()) / c0.norm() ** 2
    assert math.acos(min(1.0, cos.item())) > 0.2  # two rotations of arctan(0.2) each, some way
    assert set(opt.state[c]) >= {"exp_avg", "exp_avg_sq"}
