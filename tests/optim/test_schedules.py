"""Schedules against their closed forms (D2Z row 14, SGDR row 39) and torch's schedulers."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim import ScheduleLR
from trainlab.optim.schedules import (
    SCHEDULES,
    build_schedule,
    cosine,
    d2z,
    inverse_sqrt,
    linear,
    sgdr,
    wsd,
)


def _torch_lrs(make_sched, steps, base=1.0):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base)
    sched = make_sched(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("warmup", [0, 7])
def test_d2z_closed_form_including_past_end(warmup):
    T = 50
    f = d2z(T, warmup=warmup)
    for t in range(T + 20):
        expected = t / warmup if t < warmup else max(0.0, (T - t) / (T - warmup))
        assert f(t) == pytest.approx(expected, abs=1e-15)
    assert f(T) == 0.0 and f(warmup) == 1.0


def test_d2z_equals_torch_linear_lr_to_zero():
    T = 40
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.LinearLR(
        o, start_factor=1.0, end_factor=0.0, total_iters=T), T + 5)
    assert [d2z(T)(t) for t in range(T + 5)] == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("t0,t_mult,floor", [(10, 1, 0.0), (7, 2, 0.1), (5, 3, 0.0)])
def test_sgdr_matches_eq5_and_torch_warm_restarts(t0, t_mult, floor):
    f = sgdr(t0=t0, t_mult=t_mult, floor=floor)
    steps = 120
    # eq. (5) with explicit restart bookkeeping
    ti, tcur, ours = t0, 0, []
    for t in range(steps):
        expected = floor + 0.5 * (1 - floor) * (1 + math.cos(math.pi * tcur / ti))
        assert f(t) == pytest.approx(expected, abs=1e-12)
        ours.append(f(t))
        tcur += 1
        if tcur == ti:
            tcur, ti = 0, ti * t_mult
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        o, T_0=t0, T_mult=t_mult, eta_min=floor), steps)
    assert ours == pytest.approx(ref, abs=1e-9)


def test_cosine_closed_form_and_torch():
    T, w, fl = 60, 10, 0.1
    f = cosine(T, warmup=w, floor=fl)
    for t in range(T + 5):
        tau = min(max(t - w, 0), T - w) / (T - w)
        exp = t / w if t < w else fl + (1 - fl) * 0.5 * (1 + math.cos(math.pi * tau))
        assert f(t) == pytest.approx(exp, abs=1e-15)
    g = cosine(T)
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T), T + 1)
    assert [g(t) for t in range(T + 1)] == pytest.approx(ref, abs=1e-9)


def test_linear_and_inverse_sqrt_closed_forms():
    f = linear(30, warmup=5, floor=0.2)
    assert [f(t) for t in (0, 5, 30, 40)] == pytest.approx([0.0, 1.0, 0.2, 0.2])
    assert f(17) == pytest.approx(0.2 + 0.8 * (30 - 17) / 25)
    g = inverse_sqrt(warmup=16)
    for t in (16, 64, 400):
        assert g(t) == pytest.approx(math.sqrt(16 / t))
    assert g(8) == pytest.approx(0.5)
    h = inverse_sqrt(timescale=4)
    assert h(12) == pytest.approx(0.5)


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_wsd_phases(shape):
    T, w = 100, 10
    f = wsd(T, warmup=w, decay_fraction=0.2, floor=0.0, shape=shape)
    assert [f(t) for t in (0, 5)] == pytest.approx([0.0, 0.5])
    assert all(f(t) == 1.0 for t in range(w, 80))
    vals = [f(t) for t in range(80, 101)]
    assert all(a >= b for a, b in zip(vals, vals[1:])) and vals[-1] == 0.0
    tau = 0.25
    expected = {"linear": 1 - tau, "cosine": 0.5 * (1 + math.cos(math.pi * tau)),
                "1-sqrt": 1 - math.sqrt(tau)}[shape]
    assert f(85) == pytest.approx(expected)


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_is_bounded_and_resumes_from_the_step(name):
    f = build_schedule(name, 50)
    vals = [f(t) for t in range(70)]
    assert all(0.0 <= v <= 1.0 + 1e-12 for v in vals)
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.5)
    sched = ScheduleLR(opt, f)
    for _ in range(13):
        opt.step()
        sched.step()
    opt2 = torch.optim.SGD([p], lr=0.5)
    sched2 = ScheduleLR(opt2, build_schedule(name, 50))
    sched2.load_state_dict(sched.state_dict())
    opt2.param_groups[0]["lr"] = sched2.get_lr()[0]
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.5 * f(13))


def test_bad_arguments_name_parameter_and_value():
    with pytest.raises(ConfigError, match="decay_fraction.*0"):
        wsd(100, decay_fraction=0.0)
    with pytest.raises(ConfigError, match="shape"):
        wsd(100, shape="exp")
    with pytest.raises(ConfigError, match="exceed"):
        wsd(10, warmup=9, decay_fraction=0.5)
    with pytest.raises(ConfigError, match="timescale"):
        inverse_sqrt(timescale=0)
    with pytest.raises(ConfigError, match="floor"):
        linear(10, floor=2.0)
