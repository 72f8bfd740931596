"""PSGD's low-rank-approximation preconditioner against dense float64 references."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim.psgd_lra import PSGDLRA, lra_apply, update_lra_

F64 = torch.float64


def _low_rank_plus_identity(n, eigs, seed):
    g = torch.Generator().manual_seed(seed)
    w, _ = torch.linalg.qr(torch.randn(n, len(eigs), generator=g, dtype=F64))
    return torch.eye(n, dtype=F64) + w @ torch.diag(torch.tensor(eigs, dtype=F64)) @ w.T, w


def _dense_reference_update(u, v, d, x, hx, step, update_u, balance):
    """The paper's rules written with dense n x n matrices and dense solves. Term by term
    this is also the authors' ``update_precond_UVd_math_`` with ``step_normalizer='2nd'``
    (lixilinx/psgd_torch, preconditioned_stochastic_gradient_descent.py, as of commit
    1943e66, Dec 2024): Qh, Ph = Q^T Q h, Q^-T v and P^-1 v, the d step normalized by
    min 1/sqrt((Ph^2 + v^2)(h^2 + (P^-1 v)^2)), U or V (one of them per call, as there)
    normalized by |a| |V V^T a| + |b| |V V^T b|; their random balancing and U-or-V coin are
    arguments here."""
    n = d.numel()
    eye = torch.eye(n, dtype=F64)
    if balance:
        rho = (u.norm() / v.norm()) ** 0.5
        u, v = u / rho, v * rho
    q = (eye + u @ v.T) @ torch.diag(d)
    p = q.T @ q
    a = q @ hx                                  # Q h
    b = torch.linalg.solve(q.T, x)              # Q^{-T} v
    ph = p @ hx
    pinv_x = torch.linalg.solve(p, x)
    grad_d = ph * hx - x * pinv_x
    mu_d = step * torch.min(1 / torch.sqrt((ph ** 2 + x ** 2) * (hx ** 2 + pinv_x ** 2)))
    new_d = d - mu_d * d * grad_d
    gmat = torch.outer(a, a) - torch.outer(b, b)
    if update_u:
        vvt = v @ v.T
        mu = step / (a.norm() * (vvt @ a).norm() + b.norm() * (vvt @ b).norm())
        u = u - mu * gmat @ v @ (torch.eye(u.shape[1], dtype=F64) + v.T @ u)
    else:
        uut = u @ u.T
        mu = step / (a.norm() * (uut @ a).norm() + b.norm() * (uut @ b).norm())
        v = v - mu * (eye + v @ u.T) @ gmat @ u
    return u, v, new_d


@pytest.mark.parametrize("update_u", [True, False])
@pytest.mark.parametrize("balance", [True, False])
def test_one_update_matches_dense_reference(update_u, balance):
    g = torch.Generator().manual_seed(1)
    n, r = 12, 3
    h, _ = _low_rank_plus_identity(n, [3.0, 8.0], seed=2)
    u = 0.3 * torch.randn(n, r, generator=g, dtype=F64)
    v = 0.2 * torch.randn(n, r, generator=g, dtype=F64)
    d = 0.5 + torch.rand(n, generator=g, dtype=F64)
    x = torch.randn(n, generator=g, dtype=F64)
    ref = _dense_reference_update(u, v, d, x, h @ x, 0.1, update_u, balance)
    update_lra_(u, v, d, x, h @ x, 0.1, update_u=update_u, balance=balance)
    for got, want in zip((u, v, d), ref):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


def test_apply_matches_dense_preconditioner():
    g = torch.Generator().manual_seed(3)
    u, v = torch.randn(7, 2, generator=g, dtype=F64), torch.randn(7, 2, generator=g, dtype=F64)
    d = 0.5 + torch.rand(7, generator=g, dtype=F64)
    q = (torch.eye(7, dtype=F64) + u @ v.T) @ torch.diag(d)
    x = torch.randn(7, 1, generator=g, dtype=F64)
    torch.testing.assert_close(lra_apply(u, v, d.view(-1, 1), x), q.T @ q @ x, atol=1e-12,
                               rtol=0)


def test_fitted_preconditioner_inverts_low_rank_plus_identity_hessian():
    n, r = 30, 10
    h, w = _low_rank_plus_identity(n, [20.0, 60.0, 200.0], seed=0)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(n, r, generator=g, dtype=F64) / (n * (r + 10)) ** 0.5
    v = torch.randn(n, r, generator=g, dtype=F64) / (n * (r + 10)) ** 0.5
    d = torch.ones(n, dtype=F64)
    for k in range(2500):
        x = torch.randn(n, generator=g, dtype=F64)
        coins = torch.rand(2, generator=g, dtype=F64).tolist()
        update_lra_(u, v, d, x, h @ x, 0.1 if k < 1500 else 0.02, update_u=coins[1] < 0.5,
                    balance=coins[0] < 0.01)
    p = lra_apply(u, v, d.view(-1, 1), torch.eye(n, dtype=F64))
    torch.testing.assert_close(p, p.T, atol=1e-12, rtol=0)
    ph = torch.linalg.eigvals(p @ h).real
    assert ph.max() / ph.min() < 0.02 * torch.linalg.cond(h)  # 201 -> about 2.5
    # On the stiff subspace P ~ H^{-1}: W^T P H W ~ I (the criterion also fixes the scale).
    sub = torch.linalg.eigvalsh(w.T @ p @ h @ w)
    assert sub.min() > 0.7 and sub.max() < 1.4


def test_solves_stiff_quadratic_faster_than_gd():
    n = 20
    h, _ = _low_rank_plus_identity(n, [50.0, 400.0], seed=4)
    target = torch.randn(n, generator=torch.Generator().manual_seed(5), dtype=F64)

    def run(make, steps):
        w = torch.nn.Parameter(torch.zeros(n, dtype=F64))
        opt = make([w])

        def closure():
            w.grad = None
            e = w - target
            loss = 0.5 * e @ (h @ e)
            loss.backward()
            return loss

        for _ in range(steps):
            (opt.step(closure) if isinstance(opt, PSGDLRA) else (closure(), opt.step()))
        return closure().item()

    lra = run(lambda p: PSGDLRA(p, lr=0.5, rank=4, generator=torch.Generator().manual_seed(0)),
              300)
    gd = run(lambda p: torch.optim.SGD(p, lr=1.9 / 401.0), 300)  # lr < 2/L, L = 401
    assert lra < 1e-6
    assert lra < 1e-4 * gd


def test_first_step_sets_d_from_the_pair_and_bad_input_raises():
    w = torch.nn.Parameter(torch.ones(3, dtype=F64))
    scale = torch.tensor([1.0, 2.0, 4.0], dtype=F64)
    opt = PSGDLRA([w], lr=0.0, rank=1, precond_lr=1e-12, generator=torch.Generator())

    def closure():
        w.grad = None
        loss = 0.5 * (scale * w * w).sum()
        loss.backward()
        return loss

    gen_state = opt.generator.get_state()
    opt.step(closure)
    opt.generator.set_state(gen_state)
    x = torch.randn(3, generator=opt.generator, dtype=F64)
    want = ((x * x).sum() / ((scale * x) ** 2).sum()) ** 0.25
    torch.testing.assert_close(opt.state[w]["d"], want.expand(3), atol=1e-9, rtol=0)
    with pytest.raises(ConfigError, match="'rank'"):
        PSGDLRA([w], rank=0)
    with pytest.raises(ConfigError, match="'init_scale'"):
        PSGDLRA([w], init_scale=-1.0)
