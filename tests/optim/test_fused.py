"""The ``fused=True`` (torch.compile) paths of the Adam-like optimizers against their eager
references, step by step, in float64 and float32."""

from __future__ import annotations

import functools
import warnings

import pytest
import torch

import trainlab.optim._compiled as compiled
from trainlab.errors import ConfigError
from trainlab.optim import build_optimizer

SHAPES = [(6, 5), (5,), (3, 2, 3), (7,), (1,), (4, 4)]
CASES = {
    "ademamix": dict(lr=1e-2, weight_decay=0.1, alpha_warmup=6, beta3_warmup=6),
    "diffgrad": dict(lr=1e-2, weight_decay=0.05),
    "gravity": dict(lr=0.05),
    "grokfast-adamw": dict(lr=1e-2, weight_decay=0.1),
    "optimistic-amsgrad": dict(lr=1e-2),
    "gd": dict(lr=1e-2, momentum=0.9),
}


@functools.cache
def _compiler_works() -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.compile(lambda x: x * 2 + 1, fullgraph=True)(torch.ones(3))
    except Exception:  # no C++ toolchain: the fused path cannot exist here
        return False
    return True


@pytest.fixture(autouse=True)
def _small_groups(monkeypatch):
    if not _compiler_works():
        pytest.skip("torch.compile has no working C++ backend on this machine")
    monkeypatch.setattr(compiled, "GROUP_SIZE", 4)  # smaller graphs: faster compiles


def _params(dtype, shapes=SHAPES):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in shapes]


def _run(name, dtype, fused, steps=12, maximize=False, shapes=SHAPES):
    ps = _params(dtype, shapes)
    extra = dict(generator=torch.Generator().manual_seed(3)) if name == "gravity" else {}
    opt = build_optimizer(name, ps, fused=fused, maximize=maximize, **CASES[name], **extra)
    for k in range(steps):
        g = torch.Generator().manual_seed(100 + k)
        for p in ps:
            p.grad = torch.randn(p.shape, generator=g, dtype=dtype)
        opt.step()
    return ps, opt


@pytest.mark.parametrize("name", list(CASES))
def test_fused_equals_eager_float64(name):
    # the (1,)-shaped tensor sends its group to the eager path: drop it to fuse everything
    shapes = [s for s in SHAPES if s != (1,)]
    for maximize in (False, True):
        ref, _ = _run(name, torch.float64, False, maximize=maximize, shapes=shapes)
        out, _ = _run(name, torch.float64, True, maximize=maximize, shapes=shapes)
        for a, b in zip(ref, out):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-13)


def test_fused_float32_and_fallback():
    ref, _ = _run("ademamix", torch.float32, False)
    out, _ = _run("ademamix", torch.float32, True)  # has a 1-element tensor: eager fallback
    for a, b in zip(ref, out):
        torch.testing.assert_close(b, a)
    shapes = [s for s in SHAPES if s != (1,)]
    ref, _ = _run("ademamix", torch.float32, False, shapes=shapes)
    out, _ = _run("ademamix", torch.float32, True, shapes=shapes)
    for a, b in zip(ref, out):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_fused_is_deterministic_and_resumes():
    shapes = [s for s in SHAPES if s != (1,)]
    full, _ = _run("diffgrad", torch.float64, True, steps=10, shapes=shapes)
    part, opt = _run("diffgrad", torch.float64, True, steps=5, shapes=shapes)
    state = opt.state_dict()
    fresh = [p.detach().clone().requires_grad_() for p in part]
    opt2 = build_optimizer("diffgrad", fresh, fused=True, **CASES["diffgrad"])
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["fused"] is True
    for k in range(5, 10):
        g = torch.Generator().manual_seed(100 + k)
        for p in fresh:
            p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
        opt2.step()
    for a, b in zip(full, fresh):
        assert torch.equal(a, b)


def test_compile_failure_is_a_config_error_and_touches_nothing():
    def broken(p, g, s):
        raise RuntimeError("no compiler")

    update = compiled.CompiledUpdate(broken, "Broken")
    p, g = torch.ones(4), torch.ones(4)
    with pytest.raises(ConfigError, match="fused=True for Broken"):
        update(([p], [g]), (1.0,))
    assert torch.equal(p, torch.ones(4))


def test_can_fuse_rules():
    a, b = torch.ones(3), torch.ones(3)
    assert compiled.can_fuse([a], [b])
    assert not compiled.can_fuse([a], [torch.ones(4)])
    assert not compiled.can_fuse([a], [b.double()])
    assert not compiled.can_fuse([torch.ones(1)], [torch.ones(1)])
    assert not compiled.can_fuse([torch.ones(3, 4).t()], [torch.ones(4, 3)])
    assert not compiled.can_fuse([torch.ones(3, dtype=torch.int64)])


@pytest.mark.parametrize("predictor", ["last", "zero"])
def test_fused_optimistic_amsgrad_predictors(predictor):
    shapes = [s for s in SHAPES if s != (1,)]
    outs = []
    for fused in (False, True):
        ps = _params(torch.float64, shapes)
        opt = build_optimizer("optimistic-amsgrad", ps, lr=1e-2, predictor=predictor,
                              fused=fused)
        for k in range(8):
            g = torch.Generator().manual_seed(100 + k)
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
            opt.step()
        outs.append((ps, [opt.state[p]["half"] for p in ps]))
    for a, b in zip(outs[0][0] + outs[0][1], outs[1][0] + outs[1][1]):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-13)


def test_fused_nesterov():
    shapes = [s for s in SHAPES if s != (1,)]
    outs = []
    for fused in (False, True):
        ps = _params(torch.float64, shapes)
        opt = build_optimizer("gd", ps, lr=1e-2, momentum=0.8, nesterov=True, fused=fused,
                              maximize=True)
        for k in range(8):
            g = torch.Generator().manual_seed(100 + k)
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
            opt.step()
        outs.append(ps + [opt.state[p]["anchor"] for p in ps])
    for a, b in zip(*outs):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-13)
