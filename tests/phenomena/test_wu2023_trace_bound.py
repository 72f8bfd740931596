"""sgd-trace-bound (row 30): the closed-form Hessian trace against a dense autograd Hessian,
the batched closed-form SGD against torch.optim.SGD on a module, and the check on hand-made
runs."""

from __future__ import annotations

import numpy as np
import torch

from trainlab.phenomena.wu2023_trace_bound import TraceBound, diagonal_net_trace, sgd_diagonal_net


def _loss(theta, x, y):
    d = x.shape[1]
    return 0.5 * ((x @ (theta[:d] * theta[d:]) - y) ** 2).mean()


def test_trace_matches_dense_hessian_away_from_a_minimum():
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.rand(7, 5, generator=g, dtype=torch.float64) - 1
    y = torch.randn(7, generator=g, dtype=torch.float64)
    a, b = torch.randn(2, 5, generator=g, dtype=torch.float64), torch.randn(
        2, 5, generator=g, dtype=torch.float64)
    got = diagonal_net_trace(a, b, x)
    for r in range(2):
        h = torch.autograd.functional.hessian(lambda t: _loss(t, x, y), torch.cat([a[r], b[r]]))
        assert abs(float(torch.trace(h)) - float(got[r])) < 1e-10


class _Diag(torch.nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = torch.nn.Parameter(a.clone()), torch.nn.Parameter(b.clone())

    def forward(self, x):
        return x @ (self.a * self.b)


def _reference(x, y, a, b, lr, steps, clip, generator):
    m = _Diag(a, b)
    opt = torch.optim.SGD(m.parameters(), lr=lr)
    for _ in range(steps):
        i = torch.randint(0, x.shape[0], (1,), generator=generator)
        opt.zero_grad()
        (0.5 * (m(x[i]) - y[i]).pow(2).sum()).backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
        opt.step()
    return m.a.detach(), m.b.detach()


def test_batched_sgd_matches_torch_sgd():
    g = torch.Generator().manual_seed(1)
    x = 2 * torch.rand(9, 6, generator=g, dtype=torch.float64) - 1
    y = x[:, 0] + x[:, 1]
    a0 = torch.randn(6, generator=g, dtype=torch.float64)
    b0 = torch.randn(6, generator=g, dtype=torch.float64)
    for clip in (0.0, 0.5):  # 0.5 clips most early steps
        a, b = sgd_diagonal_net(x, y, a0[None], b0[None], torch.tensor([0.05]), 40, clip,
                                torch.Generator().manual_seed(3))
        ra, rb = _reference(x, y, a0, b0, 0.05, 40, clip, torch.Generator().manual_seed(3))
        assert torch.allclose(a[0], ra, atol=1e-10) and torch.allclose(b[0], rb, atol=1e-10)


def _data(trace, loss):
    lrs = list(np.logspace(-2.4, -0.9, 6))
    return {"lrs": lrs, "seeds": [0, 1], "trace": trace, "loss": loss}


def test_check_on_hand_made_runs():
    lrs = np.logspace(-2.4, -0.9, 6)
    good = [list(1.0 / lrs), list(1.2 / lrs)]
    ok = TraceBound().check(_data(good, [[1e-6] * 6] * 2))
    assert all(c.passed for c in ok)
    over = TraceBound().check(_data([list(3.0 / lrs)] * 2, [[1e-6] * 6] * 2))
    assert not over[1].passed  # lr x tr(H) = 3 breaks the bound
    flat = TraceBound().check(_data([[10.0] * 6, [10.5] * 6], [[1e-6] * 6] * 2))
    assert not flat[2].passed  # no decrease with lr
    unconverged = TraceBound().check(_data(good, [[1e-6] * 3 + [1.0] * 3] * 2))
    assert not unconverged[0].passed
