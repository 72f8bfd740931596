"""Residual-based adaptive refinement (trainlab.pinn.lu2021_rar)."""

import math

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError, UnknownNameError
from trainlab.pinn.lu2021_rar import largest_residuals, refine
from trainlab.tasks import build_task

NU = 0.01 / math.pi
TINY = {"n_interior": 40, "n_boundary": 8, "n_initial": 8}


def _model(task, seed=0):
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(),
                        nn.Linear(8, 1)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return task.build_network(net)


def _burgers_residual(net, x):
    """u_t + u u_x - nu u_xx by plain autograd (independent of trainlab's derivatives)."""
    x = x.clone().requires_grad_(True)
    u = net(x)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    u_xx = torch.autograd.grad(g[:, 1].sum(), x)[0][:, 1]
    return (g[:, 0] + u[:, 0] * g[:, 1] - NU * u_xx).detach()


def test_largest_residuals_are_the_top_of_a_plain_sort():
    task = build_task("pinn-burgers", **TINY)
    model = _model(task)
    points = task.problem.term("pde").sample(200, torch.Generator().manual_seed(3))
    chosen = largest_residuals(model, 0, points, 7)
    r = _burgers_residual(model.net, points).abs()
    want = points[torch.argsort(r, descending=True)[:7]]
    torch.testing.assert_close(chosen, want, rtol=0, atol=0)
    assert float(r.max()) > 2 * float(r.median())  # the choice is not trivial


def test_refine_adds_the_worst_candidates_and_reweights_the_loss():
    task = build_task("pinn-burgers", **TINY)
    model = _model(task)
    x0 = task.x_train.clone()
    x, y = refine(task, model, task.x_train, 5, 60, torch.Generator().manual_seed(1))
    assert torch.equal(task.x_train, x0)  # the caller's set is not modified
    ids, old = x[:, -1].round().long(), x0[:, -1].round().long()
    assert [int((ids == i).sum()) for i in range(3)] == [45, 8, 8]
    for i in range(3):  # each term's old rows kept, in order, first
        assert torch.equal(x[ids == i][:int((old == i).sum())], x0[old == i])
    candidates = task.problem.term("pde").sample(60, torch.Generator().manual_seed(1))
    r = _burgers_residual(model.net, candidates).abs()
    want = candidates[torch.argsort(r, descending=True)[:5]]
    torch.testing.assert_close(x[ids == 0][40:, :2], want, rtol=0, atol=0)
    # the loss is the mean over the grown PDE set plus the condition terms' means
    out = model(x)
    by_hand = 0.5 * sum(out[ids == i].pow(2).mean() for i in range(3))
    torch.testing.assert_close(task.loss(out, y), by_hand)
    again = refine(task, model, task.x_train, 5, 60, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], x) and torch.equal(again[1], y)


def test_refine_rejects_bad_input_in_one_line():
    task = build_task("pinn-burgers", **TINY)
    model = _model(task)
    for count, candidates in ((0, 10), (11, 10), (1, 0)):
        with pytest.raises(ConfigError) as err:
            refine(task, model, task.x_train, count, candidates, None)
        assert "\n" not in str(err.value)
    with pytest.raises(UnknownNameError, match="initial"):
        refine(task, model, task.x_train, 1, 10, None, term="interior")
