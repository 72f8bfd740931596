"""The Monitor's probe hooks: per-example statistics read from the training step's own
forward/backward equal the recomputed ones and a per-example backward loop (float64); hooks
record only before due steps, change no number, and are all removed at finish, also when the
run fails."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import SeqLinear, loop_grads
from torch import nn

from trainlab.probes import ProbeContext
from trainlab.probes import gradient_noise as gn_module
from trainlab.probes.gradient_noise import GradientNoise
from trainlab.probes.per_sample import LinearCapture, captured_grad_stats, per_sample_grad_stats
from trainlab.store import RunStore
from trainlab.train import Monitor, RunConfig, Trainer
from trainlab.train.data import BatchSampler


def mse(out, y):
    return 0.5 * (out - y).pow(2).sum(-1).mean()


def mlp(inplace: bool = False, bias: bool = True) -> nn.Module:
    return nn.Sequential(nn.Linear(5, 7, bias=bias), nn.ReLU(inplace=inplace), nn.Linear(7, 6),
                         nn.Tanh(), nn.Linear(6, 3))


def data(case: str, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    if case == "seq":
        return torch.randn(n, 7, 4, generator=g, dtype=torch.float64), torch.randint(
            0, 3, (n,), generator=g)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    if case == "mse":
        return x, torch.randn(n, 3, generator=g, dtype=torch.float64)
    return x, torch.randint(0, 3, (n,), generator=g)


CASES = {
    "mlp": (lambda: mlp(), F.cross_entropy),
    "inplace-relu": (lambda: mlp(inplace=True), F.cross_entropy),
    "no-bias": (lambda: mlp(bias=False), F.cross_entropy),
    "mse": (lambda: mlp(), mse),
    "seq": (SeqLinear, F.cross_entropy),
}


def build(case: str, seed: int = 0):
    torch.manual_seed(seed)
    make, loss_fn = CASES[case]
    return make().double(), loss_fn


def flat(d):
    return torch.cat([v.reshape(-1) for v in d.values()])


def hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._forward_hooks_with_kwargs) for m in model.modules())


@pytest.fixture
def recomputed(monkeypatch):
    """Counts the probe's recomputations (calls of per_sample_grad_stats)."""
    calls: list[int] = []
    original = gn_module.per_sample_grad_stats

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(gn_module, "per_sample_grad_stats", spy)
    return calls


def train_step(model, opt, loss_fn, x, y):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss


@pytest.mark.parametrize("case", CASES)
def test_captured_statistics_equal_recompute_and_per_example_loop(case):
    model, loss_fn = build(case)
    x, y = data(case, 10, seed=1)
    capture = LinearCapture(model)
    capture.arm(True)
    loss_fn(model(x), y).backward()
    capture.arm(False)
    stats = captured_grad_stats(model, capture.take(), len(x))
    capture.remove()
    assert stats is not None and stats.method == "captured"
    # the layers' own gradients of the pass gave the sums (2-D inputs): n times p.grad
    assert stats.reused_mean == (case != "seq")
    ref = loop_grads(model, loss_fn, x, y)
    torch.testing.assert_close(stats.sq_norms, ref.pow(2).sum(1))
    torch.testing.assert_close(flat(stats.grad_sum), ref.sum(0))
    torch.testing.assert_close(flat(stats.grad_sq_sum), ref.pow(2).sum(0))
    fresh = per_sample_grad_stats(model, loss_fn, x, y)
    assert fresh.method == "linear-hooks"
    torch.testing.assert_close(stats.sq_norms, fresh.sq_norms)
    torch.testing.assert_close(flat(stats.grad_sq_sum), flat(fresh.grad_sq_sum))
    assert hooks_left(model) == 0


def test_first_examples_only():
    model, loss_fn = build("mlp")
    x, y = data("mlp", 12, seed=2)
    capture = LinearCapture(model)
    capture.arm(True)
    loss_fn(model(x), y).backward()
    stats = captured_grad_stats(model, capture.take(), len(x), examples=5)
    capture.remove()
    ref = loop_grads(model, loss_fn, x[:5], y[:5])
    assert stats is not None and stats.n == 5
    torch.testing.assert_close(stats.sq_norms, ref.pow(2).sum(1))
    torch.testing.assert_close(flat(stats.grad_sum), ref.sum(0))
    torch.testing.assert_close(flat(stats.grad_sq_sum), ref.pow(2).sum(0))


@pytest.mark.parametrize("case", ["mlp", "inplace-relu", "mse", "seq"])
def test_monitor_values_equal_recomputed_probe_and_loop(case, recomputed):
    """Through the Monitor the probe reads the training pass (no recomputation) and
    reports what an unattached probe recomputes and what the definitions give."""
    model, loss_fn = build(case)
    twin = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, loss_fn=loss_fn, optimizer=opt, probes=[GradientNoise(every=1)])
    expected = []
    for step in range(3):
        x, y = data(case, 9, seed=10 + step)
        train_step(model, opt, loss_fn, x, y)
        twin.load_state_dict(model.state_dict())
        ref = loop_grads(twin, loss_fn, x, y)
        unattached = GradientNoise().measure(ProbeContext(  # recomputes, on the copy
            step=step, model=twin, loss_fn=loss_fn, batch=(x, y)))
        expected.append((ref, unattached))
        recomputed.clear()
        mon.step(torch.tensor(1.0), (x, y))
        assert not recomputed  # the monitor's probe used the recorded pass
        opt.step()
    mon.finish()
    for step, (ref, unattached) in enumerate(expected):
        n, gbar = len(ref), ref.mean(0)
        cov = (ref - gbar).T @ (ref - gbar) / (n - 1)
        var = ref.var(0, unbiased=False)
        got = {k: dict(mon.history[k])[step] for k in unattached}
        assert got["gns/trace_cov"] == pytest.approx(torch.trace(cov).item(), rel=1e-9)
        assert got["gsnr"] == pytest.approx((gbar.pow(2) / var)[var > 0].mean().item(),
                                            rel=1e-9)
        assert got["per_sample_grad_norm/mean"] == pytest.approx(
            ref.norm(dim=1).mean().item(), rel=1e-9)
        for k, v in unattached.items():
            assert got[k] == pytest.approx(float(v), rel=1e-9, abs=1e-12), k
    assert hooks_left(model) == 0


def test_statistics_are_the_recorded_pass_whatever_happens_to_the_gradient(recomputed):
    """Clipping after backward, or an L2 penalty in the loss that reaches the parameters
    directly, change p.grad but not the per-example gradients of the data loss."""
    model, loss_fn = build("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Monitor(model, loss_fn=loss_fn, optimizer=opt, probes=[GradientNoise()]) as mon:
        for step in range(2):
            x, y = data("mlp", 9, seed=3 + step)
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            penalty = sum(p.pow(2).sum() for p in model.parameters())
            (loss + 0.5 * penalty).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1e-3)
            mon.step(loss, (x, y))
            assert not recomputed
            ref = loop_grads(copy.deepcopy(model), loss_fn, x, y)  # the copy is not hooked
            assert mon.last("per_sample_grad_norm/mean") == pytest.approx(
                ref.norm(dim=1).mean().item(), rel=1e-9)
            n, gbar = len(ref), ref.mean(0)
            cov = (ref - gbar).T @ (ref - gbar) / (n - 1)
            assert mon.last("gns/trace_cov") == pytest.approx(torch.trace(cov).item(), rel=1e-9)
            opt.step()


@pytest.mark.parametrize("plan", [True, False])
def test_gradients_clipped_in_place_after_backward_are_not_taken_for_the_pass(
        recomputed, monkeypatch, plan):
    """Autograd hands the layer's own weight gradient on to p.grad without a copy, so
    clip_grad_norm_ (in place) after backward changes the recorded gradient too: the
    capture sees the changed version counter and the statistics stay the pass's (once
    they were the clipped gradient's)."""
    from trainlab.probes.noise_plan import NoisePlan

    if not plan:
        monkeypatch.setattr(NoisePlan, "build", classmethod(lambda cls, *args: None))
    model, loss_fn = build("no-bias" if plan else "mlp")
    with Monitor(model, loss_fn=loss_fn, probes=[GradientNoise()]) as mon:
        x, y = data("mlp", 9, seed=3)
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1e-3)
        mon.step(loss, (x, y))
        assert not recomputed
        ref = loop_grads(copy.deepcopy(model), loss_fn, x, y)
        n, gbar = len(ref), ref.mean(0)
        trace = torch.trace((ref - gbar).T @ (ref - gbar) / (n - 1)).item()
        assert mon.last("gns/trace_cov") == pytest.approx(trace, rel=1e-9)
        assert mon.last("gns/grad_sq") == pytest.approx((gbar @ gbar).item() - trace / n,
                                                        rel=1e-9)


def test_a_layer_recorded_twice_falls_back_to_recomputing(recomputed):
    """Two backward passes before a step (gradient accumulation): the record is refused and
    the statistics are recomputed on the batch given to the monitor."""
    model, loss_fn = build("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Monitor(model, loss_fn=loss_fn, optimizer=opt, probes=[GradientNoise()]) as mon:
        x, y = data("mlp", 8, seed=5)
        opt.zero_grad()
        for half in (slice(0, 4), slice(4, 8)):
            (loss_fn(model(x[half]), y[half]) / 2).backward()
        mon.step(torch.tensor(1.0), (x, y))
    assert recomputed == [1]
    ref = loop_grads(model, loss_fn, x, y)
    assert mon.last("per_sample_grad_norm/mean") == pytest.approx(
        ref.norm(dim=1).mean().item(), rel=1e-9)


def test_steps_not_due_record_nothing():
    model, loss_fn = build("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    probe = GradientNoise(every=2)
    mon = Monitor(model, loss_fn=loss_fn, optimizer=opt, probes=[probe])
    (capture,) = probe._captures
    layers = sum(isinstance(m, nn.Linear) for m in model.modules())
    for step in range(5):
        due = step % 2 == 0
        x, y = data("mlp", 8, seed=step)
        assert capture.armed == due
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        assert capture.recorded == (layers if due else 0)
        mon.step(loss, (x, y))
        assert capture.armed == (not due)  # armed at the end of a step before a due one
        opt.step()
    assert [s for s, _ in mon.history["gns"]] == [0, 2, 4]
    mon.finish()


def test_probe_forward_passes_inside_a_step_are_not_recorded(recomputed):
    """A probe running its own forward and backward passes at a step (evaluation,
    curvature) finds the hooks disarmed: the record stays the training pass's."""
    model, loss_fn = build("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    probe = GradientNoise(every=1)
    seen = []

    class Forward(GradientNoise):
        name = "forward-probe"

        def measure(self, ctx):
            seen.append(probe._captures[0].armed)
            loss = ctx.loss_fn(ctx.model(ctx.batch[0][:3]), ctx.batch[1][:3])
            torch.autograd.grad(loss, list(ctx.model.parameters()))
            return {}

    mon = Monitor(model, loss_fn=loss_fn, optimizer=opt, probes=[Forward(), probe])
    x, y = data("mlp", 8, seed=0)
    loss = train_step(model, opt, loss_fn, x, y)
    mon.step(loss, (x, y))
    assert seen == [False] and not recomputed and "gns" in mon.history
    mon.finish()


def test_hooks_change_no_number_and_are_removed_at_finish():
    model, loss_fn = build("inplace-relu")
    twin = copy.deepcopy(model)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    opt_twin = torch.optim.Adam(twin.parameters(), lr=0.01)
    mon = Monitor(model, loss_fn=loss_fn, optimizer=opt, probes="economy", every=2)
    assert hooks_left(model) > 0
    copy.deepcopy(model)  # a hooked model can still be copied and pickled
    pickle.loads(pickle.dumps(model))
    torch.save(model, io.BytesIO())
    for step in range(5):
        x, y = data("mlp", 8, seed=step)
        loss = train_step(model, opt, loss_fn, x, y)
        train_step(twin, opt_twin, loss_fn, x, y)
        for p, q in zip(model.parameters(), twin.parameters()):
            assert torch.equal(p.grad, q.grad)
        mon.step(loss, (x, y))
        opt.step()
        opt_twin.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)
    mon.finish()
    assert hooks_left(model) == 0
    mon.finish()  # twice is harmless


def test_hooks_are_removed_when_the_loop_raises(tmp_path):
    model, loss_fn = build("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    store = RunStore(tmp_path)
    with pytest.raises(RuntimeError, match="boom"), Monitor(
            model, loss_fn=loss_fn, optimizer=opt, probes=[GradientNoise()], store=store):
        assert hooks_left(model) > 0
        raise RuntimeError("boom")
    assert hooks_left(model) == 0
    assert store.list_runs()[0].status == "failed"


def test_trainer_failure_detaches_the_hooks(tmp_path, monkeypatch):
    calls = []
    original = BatchSampler.next

    def failing(self):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("data went away")
        return original(self)

    monkeypatch.setattr(BatchSampler, "next", failing)
    cfg = RunConfig(task="mnist1d", task_params={"num_samples": 300},
                    model_params={"width": 16}, steps=10, batch_size=16, every=1,
                    probes="economy")
    trainer = Trainer(cfg, store=RunStore(tmp_path), report=False)
    with pytest.raises(RuntimeError, match="data went away"):
        trainer.run()
    assert hooks_left(trainer.model) == 0
    runs = RunStore(tmp_path).list_runs()
    assert runs[0].status == "failed"


def test_resume_with_hooked_probes_is_bitwise_identical(tmp_path):
    """The hooks are re-armed after a checkpoint is loaded: the resumed run records the
    same numbers as the uninterrupted one."""
    import numpy as np

    cfg = RunConfig(task="mnist1d", task_params={"num_samples": 300},
                    model_params={"width": 16}, steps=12, batch_size=16, every=1,
                    probes="economy", checkpoint_every=12)
    store = RunStore(tmp_path)
    full = Trainer(cfg, store=store, report=False).run()
    part = Trainer(cfg, store=store, report=False).run(stop_at=5)
    resumed = Trainer.resume(part.run_id, store=store, report=False)
    assert resumed.run().status == "completed"
    m_full, m_res = store.metrics(full.run_id), store.metrics(part.run_id)
    assert "gsnr" in m_full and m_full.keys() == m_res.keys()
    for name in m_full:
        assert np.array_equal(m_full[name][1], m_res[name][1], equal_nan=True), name
    assert hooks_left(resumed.model) == 0


def test_float16_path_matches_the_float64_loop():
    """float16 takes its own branch (output gradients scaled to per-example size before they
    are squared, so that the squares do not underflow); it agrees with the float64 loop."""
    model, loss_fn = build("mlp")
    x, y = data("mlp", 64, seed=4)
    ref = loop_grads(model, loss_fn, x, y)
    half = copy.deepcopy(model).half()
    capture = LinearCapture(half)
    capture.arm(True)
    loss_fn(half(x.half()), y).backward()
    stats = captured_grad_stats(half, capture.take(), len(x))
    capture.remove()
    assert stats is not None and stats.flat_sq.dtype == torch.float16
    torch.testing.assert_close(flat(stats.grad_sq_sum).double(), ref.pow(2).sum(0),
                               rtol=2e-2, atol=1e-3)
    torch.testing.assert_close(stats.sq_norms.double(), ref.pow(2).sum(1), rtol=2e-2, atol=1e-3)


class MaskedLinear(nn.Linear):
    """A Linear subclass whose forward uses a masked weight: not x W^T + b."""

    def forward(self, x):
        return F.linear(x, self.weight * 0.5, self.bias)


def test_a_linear_subclass_with_its_own_forward_is_not_taken_for_a_linear(recomputed):
    torch.manual_seed(0)
    model = nn.Sequential(MaskedLinear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                 probes=[GradientNoise()]) as mon:
        x, y = data("mlp", 8, seed=6)
        loss = train_step(model, opt, F.cross_entropy, x, y)
        mon.step(loss, (x, y))
    assert recomputed == [1]  # neither the record nor the Linear products apply: vmap
    ref = loop_grads(model, F.cross_entropy, x, y)
    assert mon.last("per_sample_grad_norm/mean") == pytest.approx(
        ref.norm(dim=1).mean().item(), rel=1e-9)


def test_capture_hooks_exist_only_while_armed():
    """A disarmed capture leaves no hook on the model (its modules keep the fast call
    path); in a Monitor the hooks are there only before the forward pass of a due step."""
    model, loss_fn = build("mlp")
    capture = LinearCapture(model)
    assert hooks_left(model) == 0
    capture.arm(True)
    assert hooks_left(model) == len(capture.modules) > 0
    capture.arm(True)  # re-arming adds no second set
    assert hooks_left(model) == len(capture.modules)
    capture.arm(False)
    assert hooks_left(model) == 0
    capture.remove()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, loss_fn=loss_fn, optimizer=opt, probes=[GradientNoise(every=3)])
    seen = []
    for step in range(7):
        seen.append(hooks_left(model) > 0)
        x, y = data("mlp", 8, seed=step)
        mon.step(train_step(model, opt, loss_fn, x, y), (x, y))
        opt.step()
    assert seen == [True, False, False, True, False, False, True]
    assert [s for s, _ in mon.history["gns"]] == [0, 3, 6]
    mon.finish()
    assert hooks_left(model) == 0


class _Rehooking(GradientNoise):
    """The probe as it behaved before :meth:`GradientNoise.pause`: hooks removed at the
    start of every step and registered again at its end."""

    def pause(self) -> None:
        self.arm(False)


def test_hooks_kept_across_consecutive_due_steps_same_numbers():
    """At every step the capture's hooks are registered once (the same handles all run
    long), at every 3 steps they are gone at the steps between; either way every recorded
    number equals the one of a probe that removes and registers its hooks at every step,
    to the bit."""
    def run(probe_cls, every):
        model, loss_fn = build("mlp")
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        probe = probe_cls(every=every)
        mon = Monitor(model, loss_fn=loss_fn, optimizer=opt, probes=[probe])
        handles, hooked = [], []
        for step in range(7):
            x, y = data("mlp", 8, seed=step)
            hooked.append(hooks_left(model) > 0)
            handles.append(tuple(probe._captures[0]._handles))  # the objects: ids get reused
            loss = train_step(model, opt, loss_fn, x, y)
            # measured from the training pass's own record, not recomputed
            assert probe._captures[0].recorded == (3 if probe.due(step) else 0)
            mon.step(loss, (x, y))
            opt.step()
        mon.finish()
        assert hooks_left(model) == 0
        return mon.history, handles, hooked

    kept, handles, hooked = run(GradientNoise, 1)
    assert all(hooked) and handles[0] and all(h == handles[0] for h in handles)
    ref, ref_handles, _ = run(_Rehooking, 1)
    assert ref_handles[1] and ref_handles[1][0] is not ref_handles[0][0]  # registered anew
    assert kept == ref and len(kept["gns"]) == 7
    sparse, _, hooked = run(GradientNoise, 3)
    assert hooked == [True, False, False, True, False, False, True]
    assert sparse == run(_Rehooking, 3)[0]
