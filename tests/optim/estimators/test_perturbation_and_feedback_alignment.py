"""Row 103: weight and node perturbation are unbiased (mean over draws vs the backprop
gradient within the standard error); feedback alignment's update equals its definition with
fixed random feedback matrices, and it trains a small network."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.curvature import loss_function, trainable_params
from trainlab.optim.estimators import node_perturbation, weight_perturbation
from trainlab.optim.procedures import FeedbackAlignment

from .._tiny_mlp import batch, mse, tiny_mlp


def _true_grad(model, x, y):
    model.zero_grad()
    mse(model(x), y).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    return grads


def _z_scores(draws, true):
    out = []
    for n, t in true.items():
        d = torch.stack([s[n] for s in draws])
        out.append(((d.mean(0) - t) / (d.std(0) / len(draws) ** 0.5)).reshape(-1))
    return torch.cat(out)


def test_weight_perturbation_is_unbiased():
    model, (x, y) = tiny_mlp(), batch()
    true = _true_grad(model, x, y)
    f = loss_function(model, mse, x, y)
    params = trainable_params(model)
    before = {n: p.detach().clone() for n, p in params.items()}
    gen = torch.Generator().manual_seed(0)
    draws = [weight_perturbation(f, params, sigma=1e-4, generator=gen) for _ in range(2000)]
    assert _z_scores(draws, true).abs().max() < 4.5
    for n, p in trainable_params(model).items():
        torch.testing.assert_close(p, before[n], rtol=0, atol=0)


def test_node_perturbation_is_unbiased_and_leaves_the_model_alone():
    model, (x, y) = tiny_mlp(), batch()
    true = _true_grad(model, x, y)
    out_before = model(x).detach()
    gen = torch.Generator().manual_seed(1)
    draws = [node_perturbation(model, mse, x, y, sigma=1e-4, generator=gen)
             for _ in range(2000)]
    assert set(draws[0]) == set(true)
    assert _z_scores(draws, true).abs().max() < 4.5
    torch.testing.assert_close(model(x).detach(), out_before, rtol=0, atol=0)  # hooks removed
    assert all(p.grad is None for p in model.parameters())


def test_feedback_alignment_update_equals_definition():
    model, (x, y) = tiny_mlp(), batch()
    fa = FeedbackAlignment(model, generator=torch.Generator().manual_seed(0))
    with fa:
        mse(model(x), y).backward()
    w1, b1, w2, b2 = (p.detach() for p in model.parameters())
    a1 = x @ w1.T + b1
    h = torch.tanh(a1)
    out = h @ w2.T + b2
    e = (out - y) / x.shape[0]  # dL/dout for 0.5 * sum / n
    delta = (e @ fa.feedback["2"]) * (1 - h ** 2)  # B_2 in place of W_2
    grads = [p.grad for p in model.parameters()]
    torch.testing.assert_close(grads[2], e.T @ h)
    torch.testing.assert_close(grads[3], e.sum(0))
    torch.testing.assert_close(grads[0], delta.T @ x)
    torch.testing.assert_close(grads[1], delta.sum(0))
    assert not torch.allclose(grads[0], _true_grad(model, x, y)["0.weight"])
    assert "forward" not in model[0].__dict__  # patch removed on exit


def test_feedback_alignment_trains_and_aligns():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(256, 8, generator=gen, dtype=torch.float64)
    teacher = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    y = torch.tanh(x @ teacher)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    fa = FeedbackAlignment(model, generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    start = float(mse(model(x), y).detach())
    for _ in range(400):
        opt.zero_grad()
        with fa:
            mse(model(x), y).backward()
        opt.step()
    assert float(mse(model(x), y).detach()) < 0.2 * start
    with fa:
        model.zero_grad()
        mse(model(x), y).backward()
    fa_grad = model[0].weight.grad.reshape(-1).clone()
    true = _true_grad(model, x, y)["0.weight"].reshape(-1)
    assert float(fa_grad @ true / (fa_grad.norm() * true.norm())) > 0.2  # aligned (< 90 deg)


def test_node_perturbation_trains_a_small_network():
    model, (x, y) = tiny_mlp(), batch()
    gen = torch.Generator().manual_seed(4)
    start = float(mse(model(x), y).detach())
    for _ in range(150):
        est = node_perturbation(model, mse, x, y, sigma=1e-3, num_samples=4, generator=gen)
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.sub_(0.1 * est[n])
    assert float(mse(model(x), y).detach()) < 0.7 * start
