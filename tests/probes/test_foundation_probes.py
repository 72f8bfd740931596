"""The foundation's probes against dense float64 references and plain formulas."""

import fnmatch

import pytest
import torch
from _probe_helpers import monitored_steps
from torch import nn
from torch.func import functional_call, hessian

from trainlab.probes import PROBES, ProbeContext, build_probes
from trainlab.tasks import Task
from trainlab.train import Monitor


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,),
                                                                               generator=g)


def dense_hessian(model, x, y):
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach() for n, p in model.named_parameters()}
    sizes = [p.numel() for p in params.values()]

    def f(flat):
        chunks = torch.split(flat, sizes)
        ps = {n: c.view_as(params[n]) for n, c in zip(names, chunks)}
        return nn.functional.cross_entropy(functional_call(model, ps, (x,)), y)

    flat = torch.cat([p.reshape(-1) for p in params.values()])
    return hessian(f)(flat)


def context(model, x, y, **kw):
    loss = nn.functional.cross_entropy(model(x), y)
    model.zero_grad()
    loss.backward()
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    return ProbeContext(step=0, model=model, loss_fn=nn.functional.cross_entropy, batch=(x, y),
                        loss=loss.detach(), lr=0.1, init_params=kw.pop("init", init),
                        generator=torch.Generator().manual_seed(0), **kw)


def test_sharpness_matches_dense_float64_hessian():
    model, (x, y) = tiny_net(), batch()
    expected = torch.linalg.eigvalsh(dense_hessian(model, x, y))[-1].item()
    probe = PROBES.get("sharpness")(max_iter=5000, tol=1e-12)
    out = probe.measure(context(model, x, y))
    assert out["sharpness"] == pytest.approx(expected, rel=1e-6)
    assert out["eos_ratio"] == pytest.approx(expected * 0.1 / 2, rel=1e-6)


@pytest.mark.parametrize("name", sorted(PROBES.names()))
def test_every_probe_leaves_the_model_exactly_as_it_was(name):
    model, (x, y) = tiny_net(), batch()
    task = Task("t", "classification", x, y, x[:8], y[:8], num_outputs=3)
    ctx = context(model, x, y, prev_params={n: p.detach() * 0.9 for n, p in
                                            model.named_parameters()}, task=task)
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    grad_refs = {n: p.grad for n, p in model.named_parameters()}
    rng = torch.get_rng_state()
    probe = PROBES.get(name)()
    out = probe.measure(ctx)  # every probe must run on a plain MLP context (or return nothing)
    declared = PROBES.entry(name).info.metrics
    assert declared, f"probe {name!r} declares no metrics"
    undeclared = [k for k in out if not any(fnmatch.fnmatchcase(k, m) for m in declared)]
    assert not undeclared, f"probe {name!r} measured {undeclared}, not in its metrics {declared}"
    assert model.training
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) and torch.equal(p.grad, grads[n])
        assert p.grad is grad_refs[n]
    assert torch.equal(torch.get_rng_state(), rng)


def test_update_ratio_rotation_and_norms_formulas():
    model, (x, y) = tiny_net(), batch()
    prev = {n: p.detach() + 0.01 for n, p in model.named_parameters()}
    init = {n: p.detach() * 2.0 for n, p in model.named_parameters()}
    ctx = context(model, x, y, prev_params=prev, init=init)
    w = model[0].weight.detach()
    upd = PROBES.get("update-ratio")().measure(ctx)
    assert upd["update_ratio/0.weight"].item() == pytest.approx(
        (0.01 * w.numel() ** 0.5) / (w + 0.01).norm().item(), rel=1e-10)
    rot = PROBES.get("rotation")().measure(ctx)
    assert rot["rotation/0.weight"].item() == pytest.approx(0.0, abs=1e-12)  # w0 = 2w: no angle
    assert rot["distance/0.weight"].item() == pytest.approx(w.norm().item(), rel=1e-12)
    g = PROBES.get("grad-norm")().measure(ctx)
    total = sum(p.grad.pow(2).sum() for p in model.parameters()).sqrt().item()
    assert float(g["grad_norm"]) == pytest.approx(total, rel=1e-12)


def test_monitor_cadence_final_step_and_history_without_store():
    model, (x, y) = tiny_net(), batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, loss_fn=nn.functional.cross_entropy, optimizer=opt,
                  probes=build_probes("grad-norm,update-ratio@2", every=1), total_steps=5)
    monitored_steps(mon, model, opt, nn.functional.cross_entropy, x, y, steps=6)
    assert [s for s, _ in mon.history["grad_norm"]] == [0, 1, 2, 3, 4, 5]
    # update-ratio at 2 and 4 (prev snapshot taken the step before) and at the final step 5
    assert [s for s, _ in mon.history["update_ratio"]] == [2, 4, 5]
    assert mon.history["lr"][0][1] == 0.1
    assert not mon.step(torch.tensor(float("nan")), (x, y))
