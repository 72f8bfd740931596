"""The ``grad-noise`` measurement on a plan kept across steps (``trainlab.probes.noise_plan``):
the same floats as the general path (``captured_grad_stats`` then ``_noise``) to the bit, at
every step and after every change that rebuilds the plan (a weight replaced, another batch
size, another dtype) or sends a step to the general path (a layer recorded twice, records
that do not fit); the per-example norms' mean and std of ``fused.norm_spread`` within
``fused.RTOL`` of a float64 computation and of torch's; the float32 roundings equal torch's."""

from __future__ import annotations

import copy
import logging
import math
import pickle
import warnings

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import captured_records
from torch import nn

import trainlab.log
from trainlab.probes import build_probes, fused, noise_plan
from trainlab.probes import gradient_noise as gn_module
from trainlab.probes._scalar_bits import float32 as _float32
from trainlab.probes._scalar_bits import quotient as _quotient
from trainlab.probes.noise_plan import NoisePlan
from trainlab.probes.per_sample import _linear_layout
from trainlab.train import Monitor

pytestmark = pytest.mark.skipif(fused.library() is None, reason="no C compiler here")

METRICS = ("gns", "gns/trace_cov", "gns/grad_sq", "gsnr", "per_sample_grad_norm/mean",
           "per_sample_grad_norm/std")


class Twice(nn.Module):
    """Uses its middle layer twice (per-example products do not apply)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(9, 17), nn.Linear(17, 17), nn.Linear(17, 4)

    def forward(self, x):
        return self.c(torch.tanh(self.b(torch.tanh(self.b(torch.tanh(self.a(x)))))))


def mlp(bias: bool = True, inplace: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(9, 33, bias=bias), nn.ReLU(inplace=inplace),
                         nn.Linear(33, 17), nn.Tanh(), nn.Linear(17, 4))


def run(model: nn.Module, plan: bool, monkeypatch, steps: list[dict]) -> tuple[dict, list]:
    """The grad-noise history of a monitor over ``steps`` (each: ``batch``, ``dtype``,
    optionally ``change``, a function of the model run before the step), with the plan on
    or off, and what each call of NoisePlan.measure returned (None: not applicable)."""
    used: list = []
    with monkeypatch.context() as m:
        if plan:
            real = NoisePlan.measure

            def spy(self, records):
                out = real(self, records)
                used.append(None if out is None else self.key[1:])
                return out

            m.setattr(NoisePlan, "measure", spy)
        else:
            m.setattr(NoisePlan, "build", classmethod(lambda cls, *args: None))
        mon = Monitor(model, loss_fn=F.cross_entropy, probes=build_probes("grad-noise", every=1))
        g = torch.Generator().manual_seed(5)
        for step in steps:
            if "change" in step:
                step["change"](model)
            x = torch.randn(step["batch"], 9, generator=g).to(step["dtype"])
            y = torch.randint(0, 4, (step["batch"],), generator=g)
            model.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            mon.step(loss, (x, y))
            with torch.no_grad():  # an SGD step
                for p in model.parameters():
                    if p.grad is not None:
                        p -= 0.1 * p.grad
        mon.finish()
    return {k: [(s, v.hex()) for s, v in mon.history[k]] for k in METRICS}, used


def same_runs(make, monkeypatch, steps):
    fast, used = run(make(), True, monkeypatch, [dict(s) for s in steps])
    slow, _ = run(make(), False, monkeypatch, [dict(s) for s in steps])
    assert fast == slow and all(len(v) == len(steps) for v in fast.values())
    return used


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("bias", "inplace"), [(True, False), (False, True)])
@pytest.mark.parametrize("layerwise", [False, True])
def test_plan_gives_the_general_paths_floats_to_the_bit(monkeypatch, dtype, bias, inplace,
                                                        layerwise):
    monkeypatch.setattr(noise_plan, "LAYERWISE_MIN", 0 if layerwise else 10 ** 9)
    used = same_runs(lambda: mlp(bias, inplace).to(dtype), monkeypatch,
                     [{"batch": 24, "dtype": dtype}] * 4)
    assert used == [(24, dtype)] * 4  # the plan ran at every step, built once


def replace_weight(model):
    model[2].weight = nn.Parameter(model[2].weight.detach() * 1.5)


def test_changes_rebuild_the_plan_and_keep_the_bits(monkeypatch):
    f32, f64 = torch.float32, torch.float64
    steps = [{"batch": 24, "dtype": f32}, {"batch": 24, "dtype": f32},
             {"batch": 16, "dtype": f32},  # another batch size
             {"batch": 16, "dtype": f32, "change": replace_weight},  # a new weight
             {"batch": 16, "dtype": f64, "change": lambda m: m.double()},  # another dtype
             {"batch": 16, "dtype": f64}]
    monkeypatch.setattr(noise_plan, "LAYERWISE_MIN", 600)  # 23 x 33 + ...: layer by layer
    used = same_runs(mlp, monkeypatch, steps)
    assert used == [(24, f32), (24, f32), (16, f32), (16, f32), (16, f64), (16, f64)]


@pytest.mark.parametrize("frozen", ["layer", "weight"])
def test_frozen_parameters(monkeypatch, frozen):
    """A frozen layer is not in the layout (the plan runs without it); a frozen weight
    with a trained bias is not planned (the general path runs)."""
    def make():
        model = mlp()
        model[2].weight.requires_grad_(False)
        if frozen == "layer":
            model[2].bias.requires_grad_(False)
        return model

    used = same_runs(make, monkeypatch, [{"batch": 12, "dtype": torch.float32}] * 2)
    assert used == ([(12, torch.float32)] * 2 if frozen == "layer" else [])


def test_a_layer_recorded_twice_takes_the_general_path(monkeypatch, caplog):
    def make():
        torch.manual_seed(0)
        return Twice()

    monkeypatch.setattr(trainlab.log, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        used = same_runs(make, monkeypatch, [{"batch": 12, "dtype": torch.float32}] * 2)
    assert used == [None, None]  # the plan refused the records; the general path ran
    said = [r.getMessage() for r in caplog.records if "do not fit the kept plan" in
            r.getMessage()]
    assert len(said) == 1  # once, not at each step


def test_no_plan_is_said_once(monkeypatch, caplog):
    monkeypatch.setattr(trainlab.log, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        run(mlp(), False, monkeypatch, [{"batch": 12, "dtype": torch.float32}] * 3)
    said = [r.getMessage() for r in caplog.records if "kept plan" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("grad-noise: no kept plan for this model")


def test_records_that_do_not_fit_are_refused_before_any_call():
    model = mlp()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(24, 9, generator=g), torch.randint(0, 4, (24,), generator=g)
    records = captured_records(model, x, y, raw=True)
    plan = NoisePlan.build(_linear_layout(model), 24, torch.float32)
    assert plan is not None and plan.measure(records) is not None
    assert plan._spans is None  # (the layer-by-layer spans of a layout, checked here)
    assert noise_plan._spans([(0, 6, 0, "weight"), (6, 2, 0, "bias"), (8, 4, 1, "weight")],
                             2, 12) == ((0, 2, 0, 8), (2, 1, 8, 4))
    assert noise_plan._spans([(0, 6, 0, "weight"), (6, 2, 1, "weight"), (8, 4, 0, "bias")],
                             2, 12) is None  # a layer in two blocks
    first = next(iter(records))
    a, d, w_t, bias, w_then, b_then = records[first]

    def changed(**fields):
        kept = {**dict(a=a, d=d, w_t=w_t, bias=bias, w_then=w_then, b_then=b_then), **fields}
        return {**records, first: tuple(kept.values())}

    bad = {
        "missing": {m: r for m, r in records.items() if m is not first},
        "twice": {**records, first: None},
        "strided input": changed(a=torch.randn(9, 24).T),
        "dtype": changed(d=d.double()),
        "shape": changed(a=a[:12]),
        "no weight gradient": changed(w_t=None),
        "weight gradient laid out by rows": changed(w_t=w_t.contiguous()),
        "weight gradient changed since": changed(w_then=w_then - 1),
        "bias gradient changed since": changed(b_then=b_then - 1),
        "bias shape": changed(bias=bias[:2]),
    }
    for name, recs in bad.items():
        assert plan.measure(recs) is None, name
    assert NoisePlan.build(_linear_layout(model), 1, torch.float32) is None  # n < 2
    assert NoisePlan.build(_linear_layout(model), 24, torch.float64) is None  # weights f32


def test_a_copied_plan_is_no_plan():
    model = mlp()
    probe = gn_module.GradientNoise()
    mon = Monitor(model, loss_fn=F.cross_entropy, probes=[probe])
    x, y = torch.randn(24, 9), torch.randint(0, 4, (24,))
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    mon.step(loss, (x, y))
    assert probe._plan is not None and probe._plan[1] is not None
    copied = copy.deepcopy(probe._plan)
    assert copied[1] is None and pickle.loads(pickle.dumps(probe._plan[1])) is None
    mon.finish()
    assert probe._plan is None  # detached: the plan (which holds the layers) dropped


def test_no_plan_when_the_fused_path_is_off(monkeypatch):
    monkeypatch.setattr(fused, "_enabled", False)
    assert NoisePlan.build(_linear_layout(mlp()), 24, torch.float32) is None
    assert fused.entry("rows", torch.float32) is None
    with pytest.raises(ValueError, match="kind"):
        fused.entry("norms", torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size", [2, 3, 128, 4099])
def test_norm_spread_within_the_stated_tolerance(dtype, size):
    g = torch.Generator().manual_seed(size)
    sq = (torch.rand(size, generator=g, dtype=torch.float64) * 1e3 + 1e-3).to(dtype)
    mean, std = fused.norm_spread(sq)
    roots = sq.sqrt().double()  # the roots in the dtype, then exact arithmetic
    want_mean, want_std = roots.mean().item(), roots.std().item()
    rtol = fused.RTOL[dtype]
    assert abs(mean - want_mean) <= rtol * want_mean and abs(std - want_std) <= rtol * want_std
    assert mean == torch.tensor(mean, dtype=dtype).item()  # rounded to the dtype
    torch_mean, torch_std = sq.sqrt().mean().item(), sq.sqrt().std().item()
    assert math.isclose(mean, torch_mean, rel_tol=2 * rtol)
    assert math.isclose(std, torch_std, rel_tol=2 * rtol)


@pytest.mark.parametrize("values", [[4.0, math.inf], [4.0, math.nan], [9.0], []])
def test_norm_spread_keeps_torchs_nan_and_infinity(values):
    sq = torch.tensor(values, dtype=torch.float32)
    got = fused.norm_spread(sq)
    with warnings.catch_warnings():  # torch: no degrees of freedom left (a NaN std)
        warnings.simplefilter("ignore", UserWarning)
        want = (sq.sqrt().mean().item(), sq.sqrt().std().item())
    assert [x if not math.isnan(x) else "nan" for x in got] == [
        x if not math.isnan(x) else "nan" for x in want]


def test_float32_rounding_and_quotient_equal_torchs():
    g = torch.Generator().manual_seed(3)
    values = [1 + 2 ** -24, 1 + 3 * 2 ** -24, 3.4028235e38 * 1.0000001, 1e39, -1e39, 1e-45,
              7e-46, 1.17549435e-38 / 3, math.inf, -0.0, 0.1, math.pi,
              *torch.randn(50, generator=g, dtype=torch.float64).mul(1e3).tolist()]
    for v in values:
        assert _float32(v) == torch.tensor(v, dtype=torch.float32).item(), v
    pairs = [(a, b) for a in values[:12] for b in values[10:14] + [0.0, -0.0, 3.0]]
    for dtype in (torch.float32, torch.float64):
        for a, b in pairs:
            ta = torch.tensor(a, dtype=dtype)
            tb = torch.tensor(b, dtype=dtype)
            want = (ta / tb).item()
            got = _quotient(ta.item(), tb.item(), dtype)
            assert got == want or (math.isnan(got) and math.isnan(want)), (a, b, dtype)


def test_planned_probe_is_chosen_only_for_the_whole_batch_in_one_process(monkeypatch):
    """max_examples below the batch: the first examples only, by the general path."""
    model = mlp()
    probe = gn_module.GradientNoise(max_examples=10)
    mon = Monitor(model, loss_fn=F.cross_entropy, probes=[probe])
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(24, 9, generator=g), torch.randint(0, 4, (24,), generator=g)
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    mon.step(loss, (x, y))
    mon.finish()
    assert probe._plan is None and len(mon.history["gns"]) == 1


@pytest.mark.parametrize("path", ["plan", "second pass", "two batch sizes"])
def test_grad_noise_never_draws_from_the_generator(path):
    """``uses_generator`` is False (a monitor keeps no generator state for its savepoint):
    on each of its paths the probe leaves ``ctx.generator`` as it found it."""
    from trainlab.probes._probe import ProbeContext

    assert gn_module.GradientNoise.uses_generator is False
    torch.manual_seed(0)
    model = (nn.Sequential(nn.Linear(9, 8), nn.BatchNorm1d(8), nn.Linear(8, 4))
             if path == "two batch sizes" else mlp())
    probe = gn_module.GradientNoise()
    handle = probe.attach(model) if path == "plan" else None
    probe.arm(path == "plan")
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(24, 9, generator=g), torch.randint(0, 4, (24,), generator=g)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    probe.pause()
    generator = torch.Generator().manual_seed(7)
    state = generator.get_state()
    ctx = ProbeContext(step=0, model=model, loss_fn=F.cross_entropy, batch=(x, y),
                       loss=loss.detach(), generator=generator, warn=False)
    out = probe.measure(ctx)
    assert "gns" in out and torch.equal(generator.get_state(), state)
    assert (probe._plan is not None) == (path == "plan")
    if handle is not None:
        handle.remove()


def test_layers_of_one_input_or_one_output_take_the_plan(monkeypatch):
    """A layer with one output (``W`` 1 x I) or one input (O x 1): the gradient of ``W^T``
    laid out by columns is checked by its transpose's contiguity there (strides of a
    dimension of 1 are free); the plan runs at every step with the general path's bits."""
    def make():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(9, 1), nn.ReLU(), nn.Linear(1, 6), nn.Tanh(),
                             nn.Linear(6, 4))

    used = same_runs(make, monkeypatch, [{"batch": 12, "dtype": torch.float32}] * 3)
    assert used == [(12, torch.float32)] * 3
