"""The optimizer-aware sharpness probe against a dense float64 computation of P^-1 H, with P
written from torch's Adam update rule in the test."""

import pytest
import torch
from torch import nn
from torch.func import functional_call, hessian

from trainlab.probes import PROBES, ProbeContext


def _setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(12, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (12,),
                                                                                generator=g)
    return model, x, y


def _ctx(model, opt, x, y):
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return ProbeContext(step=3, model=model, loss_fn=nn.functional.cross_entropy, batch=(x, y),
                        loss=loss.detach(), optimizer=opt, lr=opt.param_groups[0]["lr"],
                        generator=torch.Generator().manual_seed(0))


def test_adam_preconditioned_sharpness_matches_dense_reference():
    model, x, y = _setup()
    lr, (b1, b2), eps = 0.01, (0.9, 0.999), 1e-8
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(b1, b2), eps=eps)
    probe = PROBES.get("preconditioned-sharpness")(max_iter=200, tol=1e-12)
    assert probe.measure(_ctx(model, opt, x, y)) == {}  # no Adam state before the first step
    for _ in range(3):
        _ctx(model, opt, x, y)
        opt.step()
    out = probe.measure(_ctx(model, opt, x, y))

    names = [n for n, _ in model.named_parameters()]
    params = dict(model.named_parameters())
    sizes = [p.numel() for p in params.values()]
    flat = torch.cat([p.detach().reshape(-1) for p in params.values()])

    def f(w):
        ps = {n: c.view_as(params[n]) for n, c in zip(names, torch.split(w, sizes))}
        return nn.functional.cross_entropy(functional_call(model, ps, (x,)), y)

    h = hessian(f)(flat)
    pieces = []
    for p in params.values():
        st = opt.state[p]
        t = float(st["step"])
        pieces.append(((1 - b1 ** t) * ((st["exp_avg_sq"] / (1 - b2 ** t)).sqrt() + eps))
                      .reshape(-1))
    p_inv_sqrt = torch.cat(pieces).rsqrt()
    expected = torch.linalg.eigvalsh(p_inv_sqrt[:, None] * h * p_inv_sqrt[None, :])[-1].item()
    threshold = (2 + 2 * b1) / ((1 - b1) * lr)
    assert out["precond_sharpness"] == pytest.approx(expected, rel=1e-6)
    assert out["precond_threshold"] == pytest.approx(threshold)
    assert out["precond_eos_ratio"] == pytest.approx(expected / threshold, rel=1e-6)


def test_sgd_reduces_to_plain_sharpness_and_unknown_optimizers_report_nothing():
    model, x, y = _setup()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ctx = _ctx(model, opt, x, y)
    pre = PROBES.get("preconditioned-sharpness")(max_iter=200, tol=1e-12).measure(ctx)
    plain = PROBES.get("sharpness")(max_iter=200, tol=1e-12).measure(ctx)
    assert pre["precond_sharpness"] == pytest.approx(plain["sharpness"], rel=1e-8)
    assert pre["precond_threshold"] == pytest.approx(2 / 0.1)
    adagrad = torch.optim.Adagrad(model.parameters(), lr=0.1)
    assert PROBES.get("preconditioned-sharpness")().measure(_ctx(model, adagrad, x, y)) == {}
