"""The preconditioners of trainlab's adaptive optimizers against their own updates, and the
stability thresholds against runs of the optimizers themselves."""

from __future__ import annotations

import pytest
import torch
from curvature_reference import DT, mlp
from torch import nn

from trainlab.curvature import optimizer_preconditioner
from trainlab.curvature.optimizer_sharpness import adaptive_denominator
from trainlab.errors import ConfigError
from trainlab.optim.ademamix import AdEMAMix
from trainlab.optim.diffgrad import DiffGrad
from trainlab.optim.optimistic_amsgrad import OptimisticAMSGrad
from trainlab.optim.riemannian_adam import RiemannianAdam
from trainlab.probes.adam_step_size import adam_step_sizes

LR = 0.01


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def state(opt, model, key) -> torch.Tensor:
    return flat(opt.state[p][key] for p in model.parameters())


def names(model) -> list[str]:
    return [n for n, _ in model.named_parameters()]


def random_grads(model: nn.Module, g: torch.Generator) -> None:
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g, dtype=DT)


def steps(model: nn.Module, opt: torch.optim.Optimizer, n: int) -> torch.Tensor:
    """``n`` steps on random gradients; returns the last update."""
    g = torch.Generator().manual_seed(0)
    for _ in range(n):
        random_grads(model, g)
        before = flat(model.parameters()).clone()
        opt.step()
    return flat(model.parameters()) - before


@pytest.mark.parametrize("amsgrad", [False, True])
def test_riemannian_adam_on_euclidean_groups_is_adam(amsgrad):
    model = mlp()
    opt = RiemannianAdam(model.parameters(), lr=LR, betas=(0.8, 0.99), eps=1e-2,
                         amsgrad=amsgrad)
    delta = steps(model, opt, 4)
    pre = optimizer_preconditioner(opt, model, names(model))
    torch.testing.assert_close(delta, -LR * state(opt, model, "exp_avg") / pre.diag,
                               rtol=1e-10, atol=1e-15)
    assert pre.kind == "adam"
    assert pre.threshold == pytest.approx((2 + 2 * 0.8) / (0.2 * LR))


def test_riemannian_adam_on_a_sphere_is_rejected():
    model = nn.Linear(3, 2, bias=False).double()
    with torch.no_grad():
        model.weight /= model.weight.norm(dim=1, keepdim=True)
    opt = RiemannianAdam(model.parameters(), lr=LR, manifold="sphere")
    steps(model, opt, 1)
    with pytest.raises(ConfigError, match="euclidean"):
        optimizer_preconditioner(opt, model, ["weight"])


def test_ademamix_preconditioner_is_the_one_it_applies():
    model = mlp()
    alpha, (b1, b2, b3) = 4.0, (0.8, 0.99, 0.95)
    opt = AdEMAMix(model.parameters(), lr=LR, betas=(b1, b2, b3), alpha=alpha, eps=1e-2)
    t = 5
    delta = steps(model, opt, t)
    pre = optimizer_preconditioner(opt, model, names(model))
    bc1 = 1 - b1 ** t
    # theta -= lr (m1 / bc1 + alpha m2) / D = lr (m1 + bc1 alpha m2) / P
    u = state(opt, model, "exp_avg") + bc1 * alpha * state(opt, model, "exp_avg_slow")
    torch.testing.assert_close(delta, -LR * u / pre.diag, rtol=1e-10, atol=1e-15)
    assert pre.kind == "ademamix"
    assert pre.threshold == pytest.approx(
        2 / (LR * ((1 - b1) / (1 + b1) + bc1 * alpha * (1 - b3) / (1 + b3))))
    eta = adam_step_sizes(opt)  # lr / D
    torch.testing.assert_close(eta, LR * bc1 / pre.diag, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("weight_decay,maximize", [(0.0, False), (0.1, True)])
def test_diffgrad_preconditioner_is_the_one_of_the_coming_update(weight_decay, maximize):
    model = mlp()
    opt = DiffGrad(model.parameters(), lr=LR, betas=(0.8, 0.99), eps=1e-2,
                   weight_decay=weight_decay, maximize=maximize)
    steps(model, opt, 3)
    random_grads(model, torch.Generator().manual_seed(9))  # the coming update's gradient
    pre = optimizer_preconditioner(opt, model, names(model))
    before = flat(model.parameters()).clone()
    opt.step()
    delta = flat(model.parameters()) - before
    torch.testing.assert_close(delta, -LR * state(opt, model, "exp_avg") / pre.diag,
                               rtol=1e-10, atol=1e-15)
    assert pre.kind == "adam"
    for p in model.parameters():
        p.grad = None
    with pytest.raises(ConfigError, match="current gradient"):
        optimizer_preconditioner(opt, model, names(model))


def test_optimistic_amsgrad_preconditioner_is_the_one_of_its_half_step():
    model = mlp()
    opt = OptimisticAMSGrad(model.parameters(), lr=LR, betas=(0.8, 0.99), eps=1e-2)
    steps(model, opt, 3)
    half = state(opt, model, "half").clone()
    steps(model, opt, 1)
    pre = optimizer_preconditioner(opt, model, names(model))
    # w_{t+1/2} = w_{t-1/2} - lr m_t / P
    torch.testing.assert_close(state(opt, model, "half") - half,
                               -LR * state(opt, model, "exp_avg") / pre.diag,
                               rtol=1e-10, atol=1e-15)
    assert pre.kind == "optimistic-amsgrad"


def test_every_parameter_reads_the_same_kind():
    model = mlp()
    opt = AdEMAMix(model.parameters(), lr=LR)
    steps(model, opt, 2)
    p = next(model.parameters())
    kind, denom, c = adaptive_denominator(opt, p, opt.param_groups[0], "w")
    assert kind == "ademamix" and denom.shape == p.shape and c == pytest.approx(1 - 0.9 ** 2)


def _run(make, h: float, n: int) -> float:
    """``n`` steps of the optimizer on f(x) = h x^2 / 2 from x = 1e-12, returning
    |x| / 1e-12 at the end (``n`` small enough that sqrt(v) << eps throughout: the
    preconditioner stays frozen at eps, the linear regime the threshold is about; far
    beyond, the growing v stabilizes any adaptive method)."""
    x = torch.full((1,), 1e-12, dtype=DT, requires_grad=True)
    opt = make([x])
    for _ in range(n):
        x.grad = h * x.detach()
        opt.step()
    return x.abs().item() / 1e-12


EPS = 1e6


@pytest.mark.parametrize("make,n", [
    (lambda p: AdEMAMix(p, lr=1.0, betas=(0.0, 0.999, 0.9), alpha=5.0, eps=EPS), 300),
    (lambda p: OptimisticAMSGrad(p, lr=1.0, betas=(0.9, 0.999), eps=EPS), 150),
    (lambda p: OptimisticAMSGrad(p, lr=1.0, betas=(0.9, 0.999), eps=EPS, predictor="zero"),
     1000),
], ids=["ademamix", "optimistic-amsgrad-last", "optimistic-amsgrad-zero"])
def test_thresholds_separate_stable_from_unstable_runs_of_the_optimizer(make, n):
    """Below the threshold on lambda(P^-1 H) (here h / eps) the optimizer's own iteration
    does not grow; above it, it explodes."""
    probe = nn.Linear(1, 1, bias=False).double()
    opt = make(probe.parameters())
    probe.weight.grad = torch.ones_like(probe.weight)
    opt.step()
    thr = optimizer_preconditioner(opt, probe, ["weight"]).threshold
    assert _run(make, 0.95 * thr * EPS, n) < 1.0
    assert _run(make, 1.05 * thr * EPS, n) > 1e3
