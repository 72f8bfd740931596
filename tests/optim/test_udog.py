"""U-DoG against a plain float64 recurrence written from the equations in its docstring."""

from __future__ import annotations

import io
import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim import DoG, build_optimizer
from trainlab.optim.udog import UDoG

from ._problems import grads_at, initial_params, loss_fn


def _reference(x0, blocks, steps, *, reps, eps, lr=1.0):
    """U-DoG per block of parameters, averages kept as explicit weighted sums; both gradients
    of step t come from ``loss_fn(., t)`` evaluated at the joint point of all blocks."""
    y = [x.clone() for x in x0]
    x_last = [x.clone() for x in x0]
    state = {}
    for b in blocks:
        r_eps = reps * (1 + math.sqrt(sum(float((x0[i] ** 2).sum()) for i in b)))
        state[tuple(b)] = dict(rbar=r_eps, rbars=[], omegas=[], hist=[], g_y=None)
    xbar = [x.clone() for x in x0]
    out = []

    def norm(vs):
        return math.sqrt(sum(float((v ** 2).sum()) for v in vs))

    for t in range(steps):
        point, per = [None] * len(x0), {}
        for b in blocks:
            s = state[tuple(b)]
            s["rbar"] = max(s["rbar"], norm([y[i] - x0[i] for i in b]),
                            norm([x_last[i] - x0[i] for i in b]))
            s["rbars"].append(s["rbar"])
            alpha = sum(s["rbars"]) / s["rbar"]
            omega = alpha * s["rbar"]
            total = sum(s["omegas"]) + omega
            for j, i in enumerate(b):
                acc = omega * y[i]
                for w, h in zip(s["omegas"], s["hist"]):
                    acc = acc + w * h[j]
                point[i] = acc / total
            per[tuple(b)] = (alpha, omega, total)
        m = grads_at(point, t)
        for b in blocks:
            s = state[tuple(b)]
            alpha, omega, total = per[tuple(b)]
            g_x = alpha ** 2 * norm([m[i] for i in b]) ** 2 if t == 0 else s["g_y"]
            eta_x = lr * s["rbar"] / math.sqrt(g_x + eps)
            new_x = [y[i] - alpha * eta_x * m[i] for i in b]
            s["omegas"].append(omega)
            s["hist"].append(new_x)
            for j, i in enumerate(b):
                x_last[i] = new_x[j]
                acc = sum(w * h[j] for w, h in zip(s["omegas"], s["hist"]))
                xbar[i] = acc / total
            s["g_x"] = g_x
        g = grads_at(xbar, t)
        for b in blocks:
            s = state[tuple(b)]
            alpha = per[tuple(b)][0]
            g_y = s["g_x"] + alpha ** 2 * norm([g[i] - m[i] for i in b]) ** 2
            eta_y = lr * s["rbar"] / math.sqrt(g_y + eps)
            for i in b:
                y[i] = y[i] - alpha * eta_y * g[i]
            s["g_y"] = g_y
        out.append(([x.clone() for x in xbar], [v.clone() for v in y]))
    return out


def _closure(opt, params, t, sign=1.0):
    def closure():
        opt.zero_grad()
        loss = sign * loss_fn(params, t)
        loss.backward()
        return loss
    return closure


@pytest.mark.parametrize("blocks", [[[0, 1]], [[0], [1]]], ids=["one-group", "two-groups"])
def test_matches_reference_recurrence_for_100_steps(blocks):
    x0 = initial_params(3)
    reps, eps = 1e-3, 1e-8
    ref = _reference(x0, blocks, 100, reps=reps, eps=eps)
    params = [x.clone().requires_grad_(True) for x in x0]
    opt = UDoG([{"params": [params[i] for i in b]} for b in blocks], reps_rel=reps, eps=eps)
    for t, (xbar, y) in enumerate(ref):
        opt.step(_closure(opt, params, t))
        for p, want, want_y in zip(params, xbar, y):
            torch.testing.assert_close(p.detach(), want, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(opt.state[p]["y"], want_y, rtol=1e-10, atol=1e-12)
    assert opt.state[params[0]]["step"] == 100


def test_first_step_is_dogs_first_step():
    """Step 0: x~_0 = x_0, alpha_0 = 1, G_x = |m_0|^2, so xbar_1 = x_1 moves exactly r_eps
    along -m_0, which is DoG's first step (checked against trainlab's DoG and, when installed,
    the DoG authors' package: the only independent reference U-DoG has, see the module
    docstring of trainlab.optim.udog)."""
    x0 = initial_params(5)
    params = [x.clone().requires_grad_(True) for x in x0]
    opt = UDoG(params, reps_rel=1e-2, eps=0.0)
    opt.step(_closure(opt, params, 0))
    makers = [lambda ps: DoG(ps, reps_rel=1e-2, eps=0.0)]
    try:
        import dog as authors
    except ImportError:
        authors = None
    else:
        makers.append(lambda ps: authors.DoG(ps, reps_rel=1e-2, eps=0.0))
    for make in makers:
        dog_params = [x.clone().requires_grad_(True) for x in x0]
        for p, g in zip(dog_params, grads_at(x0, 0)):
            p.grad = g
        make(dog_params).step()
        for a, b in zip(params, dog_params):
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-13, atol=1e-15)
    moved = math.sqrt(sum(float(((a.detach() - x) ** 2).sum()) for a, x in zip(params, x0)))
    r_eps = 1e-2 * (1 + math.sqrt(sum(float((x ** 2).sum()) for x in x0)))
    assert moved == pytest.approx(r_eps, rel=1e-12)


def test_loss_is_first_call_and_grad_is_at_the_new_weights():
    x0 = initial_params(1)
    params = [x.clone().requires_grad_(True) for x in x0]
    opt = UDoG(params, reps_rel=1e-3)
    loss = opt.step(_closure(opt, params, 0))
    torch.testing.assert_close(loss.detach(), loss_fn(x0, 0))  # x~_0 = x_0
    for p, g in zip(params, grads_at([p.detach() for p in params], 0)):
        torch.testing.assert_close(p.grad, g)


def test_maximize_follows_the_negated_loss():
    x0 = initial_params(2)
    a = [x.clone().requires_grad_(True) for x in x0]
    b = [x.clone().requires_grad_(True) for x in x0]
    opt_a, opt_b = UDoG(a, reps_rel=1e-3), UDoG(b, reps_rel=1e-3, maximize=True)
    for t in range(10):
        opt_a.step(_closure(opt_a, a, t))
        opt_b.step(_closure(opt_b, b, t, sign=-1.0))
    for p, q in zip(a, b):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-12, atol=1e-14)


def test_state_dict_save_load_continue_equals_uninterrupted_run():
    x0 = initial_params(4)
    params = [x.clone().requires_grad_(True) for x in x0]
    opt = UDoG(params, reps_rel=1e-3)
    for t in range(5):
        opt.step(_closure(opt, params, t))
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    clones = [p.detach().clone().requires_grad_(True) for p in params]
    opt2 = UDoG(clones, reps_rel=0.5)  # the saved groups bring reps_rel back
    opt2.load_state_dict(torch.load(buf, weights_only=True))
    for t in range(5, 10):
        opt.step(_closure(opt, params, t))
        opt2.step(_closure(opt2, clones, t))
    for p, q in zip(params, clones):
        assert torch.equal(p.detach(), q.detach())
    assert opt2.param_groups[0]["reps_rel"] == 1e-3


@pytest.mark.parametrize("kwargs,name", [({"lr": -1.0}, "'lr'"), ({"reps_rel": 0.0}, "'reps_rel'"),
                                         ({"eps": -1e-8}, "'eps'"),
                                         ({"lr": float("nan")}, "'lr'")])
def test_bad_hyperparameters_raise_config_error_naming_them(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        UDoG(initial_params(0), **kwargs)


def test_step_without_closure_and_unknown_keyword_raise():
    p = torch.zeros(2, requires_grad=True)
    opt = build_optimizer("u-dog", [p], lr=1.0)
    with pytest.raises(ConfigError, match="closure"):
        opt.step()
    with pytest.raises(ConfigError, match="unknown"):
        build_optimizer("u-dog", [p], lr=1.0, layerwise=True)


def _least_squares(steps, name):
    """Deterministic ill-conditioned least squares (singular values 1 .. 1e-2, consistent)."""
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(60, 40, generator=g, dtype=torch.float64))
    a = u * torch.logspace(0, -2, 40, dtype=torch.float64)
    b = a @ torch.randn(40, generator=g, dtype=torch.float64)
    x = torch.zeros(40, dtype=torch.float64, requires_grad=True)
    opt = build_optimizer(name, [x], lr=1.0)

    def closure():
        opt.zero_grad()
        loss = 0.5 * ((a @ x - b) ** 2).sum()
        loss.backward()
        return loss

    for _ in range(steps):
        if name == "u-dog":
            opt.step(closure)
        else:
            closure()
            opt.step()
    return float(0.5 * ((a @ x.detach() - b) ** 2).sum())


def test_accelerates_over_dog_at_equal_gradient_budget():
    """An extra to the reference test: 250 U-DoG steps (500 gradients) against 500 DoG steps
    on a deterministic ill-conditioned least-squares problem (initial loss about 8). Measured:
    3.1e-5 against 9.7e-3."""
    udog, dog = _least_squares(250, "u-dog"), _least_squares(500, "dog")
    assert udog < 1e-4
    assert udog < dog / 30


def test_quadratic_minimum():
    a_diag = torch.tensor([1.0, 10.0], dtype=torch.float64)
    x = torch.tensor([-1.0, 2.0], dtype=torch.float64, requires_grad=True)
    opt = build_optimizer("u-dog", [x], lr=1.0)

    def closure():
        opt.zero_grad()
        loss = 0.5 * ((x - 1) ** 2 * a_diag).sum()
        loss.backward()
        return loss

    for _ in range(300):
        opt.step(closure)
    torch.testing.assert_close(x.detach(), torch.ones(2, dtype=torch.float64), atol=1e-6, rtol=0)
