"""Stacked runs (trainlab.train.stacked): R runs trained as one batched run equal the same R
runs trained one at a time (float64, several SGD and Adam steps, each run on its own data),
and unsupported networks are rejected with a one-line error."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.mlp import NTKLinear
from trainlab.optim import build_optimizer
from trainlab.train.stacked import StackedSequential, keep_runs, stack_parameters


def _net(seed: int, bias: bool = True) -> nn.Sequential:
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 9, bias=bias), nn.Tanh(),
                        nn.Linear(9, 9), nn.ReLU(), nn.Linear(9, 4)).double()
    g = torch.Generator().manual_seed(seed)  # each net its own draw
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return net


def test_forward_equals_each_model_and_models_are_not_touched():
    models = [_net(s, bias=False) for s in range(3)]  # a bias-free layer: bmm, not baddbmm
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    net = StackedSequential(models[0], stack_parameters(models))
    x = torch.randn(3, 5, 2, 3, dtype=torch.float64)  # flattened to 6 features per run
    out = net(x)
    assert out.shape == (3, 5, 4)
    for r, m in enumerate(models):
        torch.testing.assert_close(out[r], m(x[r]), rtol=1e-13, atol=1e-13)
        assert all(torch.equal(before[r][k], v) for k, v in m.state_dict().items())
        state = net.run_parameters(r)
        assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_stacked_equals_training_one_at_a_time(optimizer):
    runs, steps = 3, 6
    kwargs = {"lr": 0.05, "momentum": 0.9} if optimizer == "sgd" else {"lr": 1e-2}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(runs, steps, 8, 6, generator=g, dtype=torch.float64)  # per run, per step
    y = torch.randint(0, 4, (runs, steps, 8), generator=g)
    alone = [_net(s) for s in range(runs)]
    net = StackedSequential(alone[0], stack_parameters(alone))
    opt = build_optimizer(optimizer, net.params.values(), **kwargs)
    for k in range(steps):  # the sum over runs of each run's own mean loss
        per_run = F.cross_entropy(net(x[:, k]).reshape(-1, 4), y[:, k].reshape(-1),
                                  reduction="none").view(runs, -1).mean(1)
        opt.zero_grad()
        per_run.sum().backward()
        opt.step()
    for r, model in enumerate(alone):
        single = build_optimizer(optimizer, model.parameters(), **kwargs)
        for k in range(steps):
            single.zero_grad()
            F.cross_entropy(model(x[r, k]), y[r, k]).backward()
            single.step()
        for name, p in model.named_parameters():
            torch.testing.assert_close(net.params[name][r], p, rtol=1e-12, atol=1e-12)
    moved = (net.params["5.weight"][0] - _net(0)[5].weight).abs().max()
    assert moved > 1e-3  # the runs trained (the comparison is not between two starts)


def test_errors_name_the_problem():
    with pytest.raises(ConfigError, match="Conv1d; supported layers: Flatten, Linear"):
        StackedSequential(nn.Sequential(nn.Conv1d(1, 1, 3)), {})
    with pytest.raises(ConfigError, match="NTKLinear"):  # a Linear subclass computes otherwise
        StackedSequential(nn.Sequential(NTKLinear(3, 2)), {})
    act = nn.ReLU()
    act.register_buffer("count", torch.zeros(1))
    with pytest.raises(ConfigError, match="buffers"):
        StackedSequential(nn.Sequential(nn.Linear(3, 2), act), {})
    with pytest.raises(ConfigError, match="nn.Sequential"):
        StackedSequential(nn.Linear(3, 2), {})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Flatten"):
        StackedSequential(nn.Sequential(nn.Flatten(0)), {})
    with pytest.raises(ConfigError, match="model 1 differs"):
        stack_parameters([_net(0), nn.Sequential(nn.Linear(6, 9))])
    with pytest.raises(ConfigError, match="at least one model"):
        stack_parameters([])
    params = stack_parameters([_net(0), _net(1)])
    with pytest.raises(ConfigError, match=r"params\['1.weight'\] must have shape \(R, 9, 6\)"):
        StackedSequential(_net(0), {k: v for k, v in params.items() if k != "1.weight"})
    with pytest.raises(ConfigError, match="one leading run axis"):
        StackedSequential(_net(0), params | {"1.bias": torch.zeros(3, 9)})
    net = StackedSequential(_net(0), params)
    with pytest.raises(ConfigError, match=r"x must have shape \(R=2"):
        net(torch.zeros(3, 4, 6))
    with pytest.raises(ConfigError, match=r"run must be in \[0, 1\], got 2"):
        net.run_parameters(2)


def test_a_stopped_run_leaves_the_stack_and_stays_as_it_was():
    # three SGD runs; run 1 stops after 2 of 5 steps (keep_runs): it must end exactly where it
    # was at step 2, and the others exactly where they end trained alone
    runs, steps, stop = 3, 5, 2
    g = torch.Generator().manual_seed(1)
    x = torch.randn(runs, steps, 8, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (runs, steps, 8), generator=g)
    params, ids = stack_parameters([_net(s) for s in range(runs)]), list(range(runs))
    final = {}
    for k in range(steps):
        if k == stop:
            keep = torch.tensor([r != 1 for r in ids])
            final[1] = {n: p[1].detach().clone() for n, p in params.items()}
            names = list(params)
            params = dict(zip(names, keep_runs([params[n] for n in names], keep), strict=True))
            ids = [r for r in ids if r != 1]
            assert all(p.is_leaf and p.requires_grad and p.shape[0] == 2
                       for p in params.values())
        net = StackedSequential(_net(0), params)
        rows = torch.tensor(ids)
        loss = F.cross_entropy(net(x[rows, k]).reshape(-1, 4), y[rows, k].reshape(-1),
                               reduction="none").view(len(ids), -1).mean(1).sum()
        grads = torch.autograd.grad(loss, list(params.values()))
        with torch.no_grad():
            for p, gr in zip(params.values(), grads, strict=True):
                p.sub_(0.1 * gr)
    for i, r in enumerate(ids):
        final[r] = {n: p[i] for n, p in params.items()}
    for r in range(runs):
        model = _net(r)
        for k in range(stop if r == 1 else steps):
            model.zero_grad()
            F.cross_entropy(model(x[r, k]), y[r, k]).backward()
            with torch.no_grad():
                for p in model.parameters():
                    p.sub_(0.1 * p.grad)
        for n, p in model.named_parameters():
            torch.testing.assert_close(final[r][n], p.detach(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ConfigError, match=r"keep must be a bool tensor of shape \(2,\)"):
        keep_runs([params["1.weight"]], torch.tensor([1, 0]))
