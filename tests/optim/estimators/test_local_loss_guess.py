"""Local-loss guess directions for forward gradients (row 9): the guess of each block is the
gradient of its local loss; the projected forward gradient aligns with backprop far better than
random directions (as the paper measures) and trains a small MLP."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.curvature import loss_function, trainable_params
from trainlab.errors import ConfigError
from trainlab.optim.estimators import LocalLossGuess, forward_gradient


@pytest.fixture(scope="module")
def data():
    from trainlab.tasks import build_task

    task = build_task("mnist1d")
    return task.x_train[:256], task.y_train[:256], task.loss


def _mlp(seed, width=32):
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(40, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5 if p.ndim == 2
                    else torch.zeros(p.shape))
    return model, g


def test_guess_is_the_local_loss_gradient(data):
    x, y, loss_fn = data
    model, g = _mlp(0)
    llg = LocalLossGuess(model, cuts=[1, 3], num_outputs=10, loss_fn=loss_fn, generator=g)
    out = llg.guesses(x, y)
    head = llg.heads[1]
    h = model[1](model[0](x)).detach().requires_grad_(False)
    block = model[3](model[2](h))
    local = loss_fn(head(block), y)
    ref = torch.autograd.grad(local, [model[2].weight, model[2].bias])
    torch.testing.assert_close(out.guesses[1]["2.weight"], ref[0])
    torch.testing.assert_close(out.guesses[1]["2.bias"], ref[1])
    assert not out.guesses[1]["0.weight"].any() and not out.guesses[1]["6.weight"].any()
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ConfigError, match="cuts"):
        LocalLossGuess(model, cuts=[6], num_outputs=10, loss_fn=loss_fn)


def test_local_guesses_align_better_than_random(data):
    x, y, loss_fn = data
    local_all, local_hidden, random = [], [], []
    for seed in range(3):
        model, g = _mlp(seed)
        llg = LocalLossGuess(model, cuts=[1, 3, 5], num_outputs=10, loss_fn=loss_fn,
                             generator=g)
        f = loss_function(model, loss_fn, x, y)
        params = trainable_params(model)
        true = torch.func.grad(f)(params)
        guesses = llg.guesses(x, y).guesses
        local_all.append(llg.alignment(x, y))
        local_hidden.append(forward_gradient(f, params, guesses=guesses[:3]).alignment(true))
        random.append(forward_gradient(f, params, num_directions=4, generator=g)
                      .alignment(true))
    mean = [sum(v) / len(v) for v in (local_all, local_hidden, random)]
    assert mean[0] > 0.3 and mean[0] > 5 * abs(mean[2])
    assert mean[1] > abs(mean[2])  # hidden-block local losses alone still beat random


def test_trains_with_local_guess_forward_gradients(data):
    x, y, loss_fn = data
    model, g = _mlp(0)
    llg = LocalLossGuess(model, cuts=[1, 3, 5], num_outputs=10, loss_fn=loss_fn, generator=g)
    heads_opt = None
    start = float(loss_fn(model(x), y).detach())
    for _ in range(30):
        est = llg.estimate(x, y).estimate
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.sub_(0.5 * est[n])
        if heads_opt is None:
            heads_opt = torch.optim.SGD([p for h in llg.heads for p in h.parameters()], lr=0.5)
        for h, grads in zip(llg.heads, llg.guesses(x, y).head_grads):
            for p, gr in zip(h.parameters(), grads):
                p.grad = gr
        heads_opt.step()
    assert float(loss_fn(model(x), y).detach()) < 0.85 * start
