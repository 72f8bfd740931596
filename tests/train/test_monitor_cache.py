"""What the Monitor keeps from one step to the next (the contexts' ``run_cache``, the
parameter views): every number equals the one computed afresh, to the bit, and a change of
the parameters, of the initial parameters or a loaded checkpoint is picked up."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.probes import ProbeContext, build_probes
from trainlab.probes.norms import param_norms
from trainlab.train import Monitor

SPEC = "grad-norm,weight-norm,rotation,update-ratio"


def net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()


def batches(steps: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 5, generator=g, dtype=torch.float64),
             torch.randint(0, 3, (16,), generator=g)) for _ in range(steps)]


def train(mon: Monitor, model: nn.Module, opt: torch.optim.Optimizer, data, fresh: bool = False,
          between=None) -> None:
    for i, (x, y) in enumerate(data):
        if fresh:
            mon._run_cache.clear()  # nothing kept: every norm computed at its own step
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        mon.step(loss, (x, y))
        opt.step()
        if between is not None:
            between(i, model)


def history(spec: str = SPEC, every: int = 1, fresh: bool = False, between=None, steps=7):
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes(spec, every=every), total_steps=steps - 1)
    train(mon, model, opt, batches(steps), fresh=fresh, between=between)
    return mon


@pytest.mark.parametrize("spec", [SPEC, "grad-norm,update-ratio@2,rotation@3"])
def test_kept_norms_give_the_numbers_computed_afresh_to_the_bit(spec):
    kept, fresh = history(spec), history(spec, fresh=True)
    assert kept.history.keys() == fresh.history.keys()
    assert "update_ratio" in kept.history and "rotation/0.weight" in kept.history
    for name in kept.history:
        assert kept.history[name] == fresh.history[name], name


def test_initial_norms_are_kept_and_equal_fresh_ones():
    mon = history(steps=3)
    kept = mon._run_cache["init_norms"][1]
    ctx = ProbeContext(step=0, model=net(), loss_fn=F.cross_entropy, batch=None,
                       init_params=mon.init_params)
    fresh = param_norms(ctx).init
    assert torch.equal(kept, fresh)
    assert torch.equal(fresh, torch.stack([t.norm() for t in mon.init_params.values()]))


def test_a_changed_initial_tensor_or_state_is_picked_up():
    model = net()
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    cache: dict = {}

    def table(step, init_params, prev=None):
        ctx = ProbeContext(step=step, model=model, loss_fn=F.cross_entropy, batch=None,
                           init_params=init_params, prev_params=prev, run_cache=cache)
        return param_norms(ctx)

    first = table(0, init).init
    assert torch.equal(table(1, init).init, first)
    key = cache["init_norms"][0]
    cache["init_norms"] = (key, torch.full_like(first, 7.0))  # planted: kept, not recomputed
    assert torch.equal(table(1, init).init, torch.full_like(first, 7.0))
    cache["init_norms"] = (key, first)
    init["0.weight"].mul_(3.0)  # in place: a new version of the same tensor
    assert torch.allclose(table(2, init).init[0], 3.0 * first[0], rtol=1e-14, atol=0)
    other = {n: t * 2.0 for n, t in init.items()}  # other tensors
    assert torch.equal(table(3, other).init,
                       torch.stack([t.norm() for t in other.values()]))


def test_previous_norms_are_reused_only_from_the_step_just_before():
    model = net()
    cache: dict = {}
    prev = {n: p.detach() * 0.5 for n, p in model.named_parameters()}
    want = torch.stack([t.norm() for t in prev.values()])

    def table(step):
        ctx = ProbeContext(step=step, model=model, loss_fn=F.cross_entropy, batch=None,
                           prev_params=prev, run_cache=cache)
        return param_norms(ctx)

    names = tuple(n for n, _ in model.named_parameters())
    planted = torch.full((len(names),), 123.0, dtype=torch.float64)
    cache["weight_norms"] = (3, names, planted)  # what step 3 would have left
    assert torch.equal(table(6).prev, want)  # not the step before: computed
    cache["weight_norms"] = (5, names, planted)
    assert torch.equal(table(6).prev, planted)  # the step before measured those parameters
    cache["weight_norms"] = (5, names[:-1], planted[:-1])
    assert torch.equal(table(6).prev, want)  # other parameters: computed


def test_resumed_monitor_recomputes_what_it_kept_and_matches():
    steps, cut = 7, 3
    full = history(steps=steps)
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = batches(steps)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes(SPEC, every=1), total_steps=steps - 1)
    train(mon, model, opt, data[:cut])
    state = mon.state_dict()
    mon._run_cache["init_norms"] = (None, None)  # would break any use: must be dropped
    mon.load_state_dict(state)
    assert mon._run_cache == {}
    train(mon, model, opt, data[cut:])
    for name in full.history:
        assert mon.history[name] == full.history[name], name


def test_a_replaced_parameter_is_measured():
    def replace(i, model):
        if i == 2:
            model[2].weight = nn.Parameter(model[2].weight.detach() * 2.0)

    mon = history(between=replace)
    fresh = history(between=replace, fresh=True)
    w = mon.history["weight_norm/2.weight"]
    assert w[3][1] > 1.8 * w[2][1]  # the new tensor doubled the norm
    for name in mon.history:
        assert mon.history[name] == fresh.history[name], name
    # the gradient read is the new parameter's (the optimizer does not know it: its gradient
    # accumulates, and is still there after the last step)
    last = mon.history["grad_norm/2.weight"][-1][1]
    assert last == pytest.approx(mon.model[2].weight.grad.norm().item(), rel=1e-14)
    assert last != pytest.approx(fresh.history["grad_norm/2.weight"][2][1], rel=1e-3)


def test_grads_from_the_seeded_parameters_equal_a_walk_of_the_model():
    model = net()
    x, y = batches(1)[0]
    F.cross_entropy(model(x), y).backward()
    model[0].bias.grad = None  # a parameter without gradient is skipped
    trainable = [(n, p) for n, p in model.named_parameters()]
    seeded = ProbeContext(step=0, model=model, loss_fn=F.cross_entropy, batch=(x, y),
                          cache={"trainable": trainable}).grads()
    walked = ProbeContext(step=0, model=model, loss_fn=F.cross_entropy, batch=(x, y)).grads()
    assert list(seeded) == list(walked) == ["0.weight", "2.weight", "2.bias"]
    assert all(seeded[n] is walked[n] for n in seeded)
