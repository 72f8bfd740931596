"""The optimizer contract, run over every OPTIMIZERS entry (new entries are tested the moment
they register). Flags are the typed :class:`~trainlab.optim.OptimizerInfo`, read from the
optimizer: an instance whose step needs a closure (``needs_closure``) gets one every step;
entries flagged ``needs_ggn`` (need a curvature closure built from a model, see
``trainlab.optim.loss_closure``) are skipped here and tested in their own files. Entries
flagged ``joint_step`` (one step on the concatenation of all parameters, so a group's own lr
cannot hold it still) skip the "a group with lr=0 stays put" check; entries flagged
``stochastic`` skip the exact-resume check (their draws come from the caller's generator)."""

from __future__ import annotations

import io

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim import (
    OPTIMIZERS,
    SCHEDULES,
    OptimizerInfo,
    ScheduleLR,
    build_optimizer,
    build_schedule,
    optimizer_info,
)

NAMES = OPTIMIZERS.names()


def _flags(name: str) -> OptimizerInfo:
    return OPTIMIZERS.entry(name).info


def _needs_closure(name: str) -> bool:
    return _flags(name).needs_closure


def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(16, 3, generator=g, dtype=torch.float64)
    y = torch.randn(16, 4, generator=g, dtype=torch.float64)
    return [w, b], x, y


def _loss(params, x, y):
    w, b = params
    return ((torch.tanh(x @ w.T + b) - y) ** 2).mean()


def _step(opt, name, params, x, y):
    def closure():
        opt.zero_grad()
        loss = _loss(params, x, y)
        loss.backward()
        return loss

    if optimizer_info(opt).needs_closure:  # the instance decides (gd's polyak rule needs one)
        return opt.step(closure)
    closure()
    return opt.step()


def _skip_special(name):
    if _flags(name).needs_ggn:
        pytest.skip(f"{name} has the registry flag needs_ggn")


@pytest.mark.parametrize("name", NAMES)
def test_entry_has_summary_and_papers_are_rows(name):
    e = OPTIMIZERS.entry(name)
    assert e.summary and all(isinstance(r, int) and 1 <= r <= 119 for r in e.papers)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_resumes_exactly(name):
    _skip_special(name)
    if _flags(name).stochastic:
        pytest.skip(f"{name} is flagged stochastic: its draws come from a caller's generator")
    params, x, y = _problem()
    opt = build_optimizer(name, params, lr=1e-2)
    for _ in range(3):
        _step(opt, name, params, x, y)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    clones = [p.detach().clone().requires_grad_(True) for p in params]
    opt2 = build_optimizer(name, clones, lr=1e-2)
    opt2.load_state_dict(saved)
    for _ in range(3):
        _step(opt, name, params, x, y)
        _step(opt2, name, clones, x, y)
    for a, b in zip(params, clones):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_grad_is_left_as_computed(name):
    _skip_special(name)
    params, x, y = _problem()
    opt = build_optimizer(name, params, lr=1e-2)
    _step(opt, name, params, x, y)  # state exists from here on
    ps = [p.detach().clone().requires_grad_(True) for p in params]
    expected = torch.autograd.grad(_loss(ps, x, y), ps)
    if _needs_closure(name):
        _step(opt, name, params, x, y)
        got = [p.grad for p in params]
        assert all(g is not None and torch.isfinite(g).all() for g in got)
    else:
        opt.zero_grad()
        _loss(params, x, y).backward()
        ids = [id(p.grad) for p in params]
        opt.step()
        assert [id(p.grad) for p in params] == ids  # not replaced
        for p, e in zip(params, expected):
            torch.testing.assert_close(p.grad, e, rtol=0, atol=0)  # not modified


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_hold_their_own_hyperparameters(name):
    _skip_special(name)
    params, x, y = _problem()
    opt = build_optimizer(name, [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.0}],
                          lr=1e-2)
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 0.0]
    b0 = params[1].detach().clone()
    for _ in range(3):
        _step(opt, name, params, x, y)
    if not _flags(name).joint_step:
        assert torch.equal(params[1].detach(), b0), "a group with lr=0 moved"
    assert not torch.equal(params[0].detach(), _problem()[0][0].detach())


@pytest.mark.parametrize("name", NAMES)
def test_none_grad_parameter_is_untouched_and_zero_grad_is_finite(name):
    _skip_special(name)
    params, x, y = _problem()
    opt = build_optimizer(name, params, lr=1e-2)
    b0 = params[1].detach().clone()
    if _needs_closure(name):
        def closure():
            opt.zero_grad()
            loss = (params[0] ** 2).sum() * 0.0
            loss.backward()
            return loss
        opt.step(closure)
    else:
        params[0].grad = torch.zeros_like(params[0])
        opt.step()
    assert params[1].grad is None or not params[1].grad.any()
    assert torch.equal(params[1].detach(), b0)
    assert torch.isfinite(params[0]).all()


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_config_errors(name):
    params, _, _ = _problem()
    with pytest.raises(ConfigError, match="lr|learning rate"):
        build_optimizer(name, params, lr=-1.0)
    with pytest.raises(ConfigError):
        build_optimizer(name, params, lr=1e-3, definitely_not_a_hyperparameter=1)


@pytest.mark.parametrize("schedule", SCHEDULES.names())
@pytest.mark.parametrize("name", NAMES)
def test_works_under_every_schedule(name, schedule):
    _skip_special(name)
    params, x, y = _problem()
    opt = build_optimizer(name, params, lr=1e-2)
    f = build_schedule(schedule, 8)
    sched = ScheduleLR(opt, f)
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        _step(opt, name, params, x, y)
        sched.step()
    assert seen == pytest.approx([1e-2 * f(t) for t in range(6)])
    assert all(torch.isfinite(p).all() for p in params)
