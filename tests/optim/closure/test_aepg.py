"""AEPG / AEGD (row 43): the paper's update written out in the test (identity, per-coordinate
and natural-gradient preconditioners), and the energy never increasing at any step size."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, jacrev

from trainlab.errors import ConfigError
from trainlab.optim.aepg import AEPG
from trainlab.optim.loss_closure import make_closure

from .._tiny_mlp import batch, flat_params, functional, mse, tiny_mlp


def _dense_ggn(model, x, y):
    """``J^T J / n`` for the helpers' loss ``0.5 * sum (out - y)^2 / n`` (float64)."""
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach() for n, p in model.named_parameters()}
    jac = jacrev(lambda p: functional_call(model, p, (x,)))(params)
    j = torch.cat([jac[n].reshape(x.shape[0] * y.shape[1], -1) for n in names], dim=1)
    return j.T @ j / x.shape[0]


def _reference(model, x, y, steps, *, lr, c, preconditioner, damping, coordinatewise):
    f, w = functional(model, x, y)
    r = None
    for _ in range(steps):
        loss = f(w)
        v = torch.func.grad(f)(w) / (2 * (loss + c).sqrt())
        if preconditioner == "ggn":
            with torch.no_grad():
                torch.nn.utils.vector_to_parameters(w, model.parameters())
            g = _dense_ggn(model, x, y)
            pv = torch.linalg.solve(g + damping * torch.eye(w.numel(), dtype=w.dtype), v)
        else:
            pv = v
        if r is None:
            r = (loss + c).sqrt() * (torch.ones_like(w) if coordinatewise else 1.0)
        r = r / (1 + 2 * lr * (v * pv if coordinatewise else v @ pv))
        w = w - 2 * lr * r * pv
    return w.detach(), r


@pytest.mark.parametrize("preconditioner,coordinatewise", [("identity", False),
                                                           ("identity", True), ("ggn", False)])
def test_matches_paper_update(preconditioner, coordinatewise):
    model, (x, y) = tiny_mlp(), batch()
    hyper = dict(lr=0.3, c=1.0, preconditioner=preconditioner, damping=0.05,
                 coordinatewise=coordinatewise)
    ref_model = tiny_mlp()
    opt = AEPG(model.parameters(), cg_iters=200, **hyper)
    for _ in range(4):
        opt.step(make_closure(model, mse, x, y))
    ref, energy = _reference(ref_model, x, y, 4, **hyper)
    torch.testing.assert_close(flat_params(model), ref, rtol=1e-7, atol=1e-9)
    state = opt.state[next(model.parameters())]
    torch.testing.assert_close(state["energy"], torch.as_tensor(energy, dtype=torch.float64),
                               rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("coordinatewise", [False, True])
def test_energy_never_increases_even_with_a_huge_step(coordinatewise):
    model, (x, y) = tiny_mlp(), batch()
    opt = AEPG(model.parameters(), lr=50.0, coordinatewise=coordinatewise)
    closure = make_closure(model, mse, x, y)
    energies, losses = [], []
    for _ in range(60):
        losses.append(float(opt.step(closure)))
        energies.append(opt.state[next(model.parameters())]["energy"].clone())
    for e0, e1 in zip(energies, energies[1:]):
        assert bool((e1 <= e0).all())
    assert all(torch.isfinite(e).all() for e in energies)
    assert max(losses) < 1e3 * losses[0]  # no blow-up at lr = 50


def test_needs_f_plus_c_positive():
    w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))

    def closure():
        w.grad = None
        loss = (w ** 2).sum() - 10.0
        loss.backward()
        return loss

    with pytest.raises(ConfigError, match="f \\+ c > 0"):
        AEPG([w], c=1.0).step(closure)


def test_coordinatewise_matches_the_authors_aegd_code():
    """coordinatewise=True against the authors' AEGD optimizer (txping/AEGD, aegd.py:
    ``AEGD.step`` with weight_decay 0), restated in float64: per tensor, an energy r started
    at sqrt(f(x_0) + c) times ones, dg = grad / (2 sqrt(f + c)), r <- r / (1 + 2 lr dg^2),
    p <- p - 2 lr r dg; 30 steps at lr 0.4 (their CIFAR setting)."""
    model, (x, y) = tiny_mlp(), batch()
    twin = tiny_mlp()
    opt = AEPG(model.parameters(), lr=0.4, c=1.0, coordinatewise=True)
    energies = {}
    for _ in range(30):
        opt.step(make_closure(model, mse, x, y))
        twin.zero_grad()
        loss = mse(twin(x), y)
        loss.backward()
        with torch.no_grad():
            sqrtloss = torch.sqrt(loss.detach() + 1.0)
            for p in twin.parameters():
                dg = p.grad / (2 * sqrtloss)
                r = energies.setdefault(p, sqrtloss * torch.ones_like(p))
                r.div_(1 + 2 * 0.4 * dg ** 2)
                p.add_(-2 * 0.4 * r * dg)
        torch.testing.assert_close(flat_params(model), flat_params(twin), rtol=1e-12,
                                   atol=1e-14)
    torch.testing.assert_close(opt.state[next(model.parameters())]["energy"],
                               torch.cat([energies[p].reshape(-1) for p in twin.parameters()]),
                               rtol=1e-12, atol=1e-14)
