"""Backprop as Functor (row 118): the composite of two gradient learners updates exactly as
backpropagation + SGD on the composite function, its request is the input moved against the
composite's input gradient, composition is associative, and iterated updates fit a teacher."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.optim.procedures import gradient_learner, module_learner


def _layer(seed, d_in, d_out, act):
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(d_in, d_out).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    return nn.Sequential(layer, act) if act is not None else layer


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(8, 3, generator=g, dtype=torch.float64),
            torch.randn(8, 2, generator=g, dtype=torch.float64))


def test_composite_update_is_backprop_plus_sgd():
    f, h = _layer(0, 3, 4, nn.Tanh()), _layer(1, 4, 2, None)
    a, c = _batch()
    composite = module_learner(f, lr=0.1) >> module_learner(h, lr=0.1)
    p_new, q_new = composite.step(a, c).params
    net = nn.Sequential(f, h)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    opt.zero_grad()
    (0.5 * ((net(a) - c) ** 2).sum()).backward()
    x = a.clone().requires_grad_(True)
    (x_grad,) = torch.autograd.grad(0.5 * ((net(x) - c) ** 2).sum(), x)
    opt.step()
    for name, p in f.named_parameters():
        torch.testing.assert_close(p_new[name], p.detach())
    for name, p in h.named_parameters():
        torch.testing.assert_close(q_new[name], p.detach())
    torch.testing.assert_close(composite.request(composite.params, a, c), a - x_grad)


def test_composition_is_associative():
    layers = [_layer(i, d0, d1, nn.Tanh()) for i, (d0, d1) in enumerate([(3, 4), (4, 4), (4, 2)])]
    a, c = _batch(1)
    f, g, h = (module_learner(m, lr=0.05) for m in layers)
    left, right = (f >> g) >> h, f >> (g >> h)
    torch.testing.assert_close(left(a), right(a))
    (pl, ql), rl = left.step(a, c).params
    pr, (qr, rr) = right.step(a, c).params
    for x, y in ((pl, pr), (ql, qr), (rl, rr)):
        for k in x:
            torch.testing.assert_close(x[k], y[k])
    torch.testing.assert_close(left.request(left.params, a, c),
                               right.request(right.params, a, c))


def test_iterated_updates_fit_a_teacher():
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    c = torch.sin(a @ torch.randn(3, 2, generator=gen, dtype=torch.float64))

    def affine(p, x):
        return x @ p[0] + p[1]

    def init(d_in, d_out):
        return (0.5 * torch.randn(d_in, d_out, generator=gen, dtype=torch.float64),
                torch.zeros(d_out, dtype=torch.float64))

    tanh = gradient_learner(lambda p, x: torch.tanh(x), (), lr=0.0)  # no parameters
    learner = gradient_learner(affine, init(3, 16), 0.01) >> tanh >> gradient_learner(
        affine, init(16, 2), 0.01)
    start = float(((learner(a) - c) ** 2).mean())
    for _ in range(300):
        learner = learner.step(a, c)
    assert float(((learner(a) - c) ** 2).mean()) < 0.1 * start
