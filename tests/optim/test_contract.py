"""The optimizer contract, run over every OPTIMIZERS entry (new entries are tested the moment
they register). Flags are the typed :class:`~trainlab.optim.OptimizerInfo`, read from the
optimizer: an instance whose step needs a closure (``needs_closure``) gets one every step;
entries flagged ``needs_ggn`` (need a curvature closure built from a model, see
``trainlab.optim.loss_closure``) are skipped here and tested in their own files. Entries
whose step is one joint computation over all groups reject a group with its own value of a
shared hyperparameter (``joint_hypers``) instead of ignoring it; stochastic entries resume
exactly too (their generator's state is in the state dict)."""

from __future__ import annotations

import copy
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
from trainlab.registry import lookup

NAMES = lookup("optimizer").names()  # plug-ins too (TRAINLAB_IMPORT, entry points)


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
    """Stochastic methods too: their generator's state travels in the state dict."""
    _skip_special(name)
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


def _joint_hypers(opt) -> tuple[str, ...]:
    names = getattr(opt, "joint_hypers", ())
    return tuple(opt.defaults) if names == "all" else tuple(names)


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_hold_their_own_hyperparameters(name):
    """A group's lr is honoured (lr=0 holds it still) or rejected with a ConfigError naming
    'lr' (joint-step methods: one solve over all groups); never silently ignored."""
    _skip_special(name)
    params, x, y = _problem()
    groups = [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.0}]
    try:
        opt = build_optimizer(name, groups, lr=1e-2)
    except ConfigError as exc:
        assert "'lr'" in str(exc) and "group" in str(exc)
        assert "lr" in _joint_hypers(build_optimizer(name, [params[0]], lr=1e-2))
        return
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 0.0]
    b0 = params[1].detach().clone()
    for _ in range(3):
        _step(opt, name, params, x, y)
    assert torch.equal(params[1].detach(), b0), "a group with lr=0 moved"
    assert not torch.equal(params[0].detach(), _problem()[0][0].detach())


@pytest.mark.parametrize("name", NAMES)
def test_joint_hyperparameters_must_agree_across_groups(name):
    """Every hyperparameter a method shares across groups is rejected when a group sets its
    own value, at construction and when a scheduler or user sets the groups apart later."""
    _skip_special(name)
    params, x, y = _problem()
    opt = build_optimizer(name, [{"params": [params[0]]}, {"params": [params[1]]}], lr=1e-2)
    for key in _joint_hypers(opt):
        value = opt.param_groups[0][key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        other = value * 2 + 1 if value * 2 + 1 != value else value + 1
        with pytest.raises(ConfigError, match=f"'{key}'"):
            build_optimizer(name, [{"params": [params[0]]}, {"params": [params[1]], key: other}],
                            lr=1e-2)
        if getattr(opt, "requires_closure", False) and not isinstance(opt, torch.optim.LBFGS):
            opt.param_groups[1][key] = other
            with pytest.raises(ConfigError, match=f"'{key}'"):
                _step(opt, name, params, x, y)
            opt.param_groups[1][key] = value


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
    """The optimizer's update follows the scheduled lr: from the same state, a step taken with
    the scheduled lr differs from one taken with the peak lr whenever the schedule is off its
    peak, and a step with a scheduled lr of 0 leaves the parameters where they are."""
    _skip_special(name)
    params, x, y = _problem()
    opt = build_optimizer(name, params, lr=1e-2)
    f = build_schedule(schedule, 8)
    sched = ScheduleLR(opt, f)
    seen = []
    for t in range(6):
        seen.append(opt.param_groups[0]["lr"])
        peak_params = [p.detach().clone().requires_grad_(True) for p in params]
        peak_opt = build_optimizer(name, peak_params, lr=1e-2)
        peak_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
        for group in peak_opt.param_groups:
            group["lr"] = 1e-2
        before = [p.detach().clone() for p in params]
        _step(opt, name, params, x, y)
        _step(peak_opt, name, peak_params, x, y)
        moved = [p.detach() for p in params]
        if f(t) == 0:
            assert all(torch.equal(a, b) for a, b in zip(moved, before)), \
                f"step {t}: the scheduled lr is 0 but the parameters moved"
        elif f(t) != 1 and any(not torch.equal(a, b) for a, b in zip(moved, before)):
            assert any(not torch.equal(a, b.detach()) for a, b in zip(moved, peak_params)), \
                f"step {t}: lr {1e-2 * f(t):g} gave the same update as the peak lr"
        sched.step()
    assert seen == pytest.approx([1e-2 * f(t) for t in range(6)])
    assert all(torch.isfinite(p).all() for p in params)
