"""PSGD's fitted preconditioner against the inverse of a known Hessian."""

from __future__ import annotations

import torch

from trainlab.optim.psgd import PSGD, update_diag_, update_kron_


def _spd(n, seed, low=0.5, high=4.0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q @ torch.diag(torch.linspace(low, high, n, dtype=torch.float64)) @ q.T


def test_kron_preconditioner_converges_to_inverse_hessian():
    # f(W) = 0.5 <W, L W R>: Hessian (R kron L) in column-major vec, so H V = L V R.
    left, right = _spd(3, 0), _spd(4, 1)
    ql, qr = torch.eye(3, dtype=torch.float64), torch.eye(4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    for k in range(4000):
        v = torch.randn(3, 4, generator=gen, dtype=torch.float64)
        update_kron_(ql, qr, v, left @ v @ right, 0.1 if k < 2000 else 0.01)
    p = torch.kron(qr.T @ qr, ql.T @ ql)  # P acting on column-major vec(V)
    h = torch.kron(right, left)
    ph = p @ h
    scale = torch.trace(ph) / 12
    assert (ph / scale - torch.eye(12, dtype=torch.float64)).abs().max() < 0.05
    assert abs(scale - 1) < 0.05  # the Newton-type criterion also fixes the scale


def test_diag_preconditioner_converges_to_inverse_diagonal():
    d = torch.tensor([0.3, 1.0, 5.0, 20.0], dtype=torch.float64)
    q = torch.ones(4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for k in range(3000):
        v = torch.randn(4, generator=gen, dtype=torch.float64)
        update_diag_(q, v, d * v, 0.1 if k < 1500 else 0.01)
    torch.testing.assert_close(q ** 2 * d, torch.ones(4, dtype=torch.float64), atol=0.05, rtol=0)


def test_psgd_solves_ill_conditioned_quadratic_faster_than_gd():
    left, right = _spd(3, 3, 0.05, 5.0), _spd(4, 4, 0.1, 2.0)
    target = torch.randn(3, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)

    def run(opt_factory, steps):
        w = torch.nn.Parameter(torch.zeros(3, 4, dtype=torch.float64))
        opt = opt_factory([w])

        def closure():
            w.grad = None
            d = w - target
            loss = 0.5 * (d * (left @ d @ right)).sum()
            loss.backward()
            return loss

        for _ in range(steps):
            (opt.step(closure) if isinstance(opt, PSGD) else (closure(), opt.step()))
        return closure().item()

    psgd_loss = run(lambda p: PSGD(p, lr=0.5, momentum=0.0,
                                   generator=torch.Generator().manual_seed(0)), 200)
    gd_loss = run(lambda p: torch.optim.SGD(p, lr=1.9 / 10.0), 200)  # lr < 2/L, L = 5 * 2
    assert psgd_loss < 1e-6
    assert psgd_loss < 1e-3 * gd_loss
