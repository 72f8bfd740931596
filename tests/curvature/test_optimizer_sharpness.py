"""Optimizer-aware sharpness: P against torch's own steps, thresholds against simulations,
lambda_max(P^-1 H) against a dense eigen-decomposition."""

from __future__ import annotations

import pytest
import torch
from curvature_reference import DT, classification_batch, dense_hessian, mlp
from torch import nn

from trainlab.curvature import (
    HessianOperator,
    optimizer_preconditioner,
    preconditioned_sharpness,
)
from trainlab.errors import ConfigError


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def run_steps(model: nn.Module, opt: torch.optim.Optimizer, steps: int) -> torch.Tensor:
    """Random gradients; returns the last step's gradient (flat) and leaves grads set."""
    g = gen(0)
    for _ in range(steps):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=g, dtype=DT)
        before = torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])
        grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        opt.step()
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return after - before, grad


def flat_state(opt, model, key):
    return torch.cat([opt.state[p][key].reshape(-1) for p in model.parameters()])


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.AdamW])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_preconditioner_is_the_one_torch_applies(cls, amsgrad):
    model = mlp()
    opt = cls(model.parameters(), lr=0.01, betas=(0.8, 0.99), eps=1e-2, amsgrad=amsgrad,
              weight_decay=0.0)
    delta, _ = run_steps(model, opt, 4)
    pre = optimizer_preconditioner(opt, model, [n for n, _ in model.named_parameters()])
    expected = -0.01 * flat_state(opt, model, "exp_avg") / pre.diag
    assert torch.allclose(delta, expected, rtol=1e-10, atol=1e-15)
    assert pre.threshold == pytest.approx((2 + 2 * 0.8) / (0.2 * 0.01))
    assert pre.kind == "adam"


def test_zero_lr_is_stable_at_any_curvature():
    """A schedule's last step has lr 0: the threshold is infinite and the ratio 0 (it used to
    divide by zero and stop the run)."""
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    run_steps(model, opt, 2)
    opt.param_groups[0]["lr"] = 0.0
    pre = optimizer_preconditioner(opt, model, [n for n, _ in model.named_parameters()])
    assert pre.threshold == float("inf")


def test_adam_default_threshold_is_38_over_lr():
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    run_steps(model, opt, 1)
    pre = optimizer_preconditioner(opt, model, [n for n, _ in model.named_parameters()])
    assert pre.threshold == pytest.approx(38 / 1e-3)


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_preconditioner_is_the_one_torch_applies(centered):
    model = mlp()
    opt = torch.optim.RMSprop(model.parameters(), lr=0.01, eps=1e-2, centered=centered)
    delta, grad = run_steps(model, opt, 3)
    pre = optimizer_preconditioner(opt, model, [n for n, _ in model.named_parameters()])
    assert torch.allclose(delta, -0.01 * grad / pre.diag, rtol=1e-10, atol=1e-15)
    assert pre.threshold == pytest.approx(2 / 0.01)


@pytest.mark.parametrize("momentum,dampening,nesterov", [(0.0, 0.0, False), (0.9, 0.0, False),
                                                         (0.5, 0.3, False), (0.9, 0.0, True)])
def test_sgd_threshold_separates_stable_from_unstable_torch_runs(momentum, dampening, nesterov):
    """torch's SGD on f(x) = h x^2 / 2 decays for h just below the threshold, grows above."""
    lr = 0.1
    probe = nn.Linear(1, 1, bias=False)
    opt = torch.optim.SGD(probe.parameters(), lr=lr, momentum=momentum, dampening=dampening,
                          nesterov=nesterov)
    thr = optimizer_preconditioner(opt, probe, ["weight"]).threshold

    def final(h: float) -> float:
        x = torch.ones(1, dtype=DT, requires_grad=True)
        sgd = torch.optim.SGD([x], lr=lr, momentum=momentum, dampening=dampening,
                              nesterov=nesterov)
        for _ in range(1500):
            x.grad = h * x.detach()
            sgd.step()
        return x.abs().item()

    assert final(0.97 * thr) < 1e-3
    assert final(1.03 * thr) > 1e3


def test_adam_threshold_matches_the_frozen_preconditioner_recurrence():
    """Cohen et al.'s frozen-P Adam on a quadratic: m = b1 m + (1-b1) h x; x -= lr m / p."""
    lr, b1 = 0.01, 0.9
    model = nn.Linear(1, 1, bias=False)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(b1, 0.999))
    model.weight.grad = torch.ones_like(model.weight)
    opt.step()
    thr = optimizer_preconditioner(opt, model, ["weight"]).threshold

    def final(curv: float) -> float:  # curv = lambda(P^-1 H)
        x, m = 1.0, 0.0
        for _ in range(3000):
            m = b1 * m + (1 - b1) * curv * x
            x -= lr * m
            if abs(x) > 1e6:
                break
        return abs(x)

    assert final(0.97 * thr) < 1e-3 and final(1.03 * thr) > 1e3


def test_preconditioned_sharpness_matches_dense_and_leaves_everything_alone():
    model, (x, y) = mlp(), classification_batch()
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, eps=1e-4)
    for _ in range(3):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    state = [(v, v.clone()) for s in opt.state.values() for v in s.values()]
    grads = [p.grad.clone() for p in model.parameters()]
    op = HessianOperator(model, loss_fn, (x, y))
    res = preconditioned_sharpness(op, opt, tol=1e-10, generator=gen(0))
    pre = optimizer_preconditioner(opt, model, list(op.params))
    dense = dense_hessian(model, loss_fn, x, y) / pre.diag[:, None]  # P^-1 H
    top = torch.linalg.eigvals(dense).real.max().item()
    assert res.value == pytest.approx(top, rel=1e-8)
    assert res.ratio == pytest.approx(top * 0.01 / 38)
    assert res.eigen.all_converged
    assert all(torch.equal(v, saved) for v, saved in state)
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, model.parameters()))
    warm = preconditioned_sharpness(op, opt, tol=1e-6, v0=res.eigen.vectors)
    assert warm.eigen.matvecs <= 2


def test_errors():
    model = mlp()
    names = [n for n, _ in model.named_parameters()]
    with pytest.raises(ConfigError, match="no state"):
        optimizer_preconditioner(torch.optim.Adam(model.parameters()), model, names)
    with pytest.raises(ConfigError, match="supports"):
        optimizer_preconditioner(torch.optim.Adagrad(model.parameters()), model, names)
    groups = [{"params": [model[0].weight], "lr": 0.1},
              {"params": [p for n, p in model.named_parameters() if n != "0.weight"]}]
    with pytest.raises(ConfigError, match="'lr'"):
        optimizer_preconditioner(torch.optim.SGD(groups, lr=0.2), model, names)
    with pytest.raises(ConfigError, match="does not update"):
        optimizer_preconditioner(torch.optim.SGD(model[0].parameters(), lr=0.1), model, names)
