"""Polynomial preconditioning (row 92): symmetric polynomials, the preconditioned spectrum
against its closed form and the paper's condition-number bound, the optimizer against a dense
eigendecomposition reference, and the speed-up on a quadratic with a large top gap."""

from __future__ import annotations

import itertools
import math

import torch

from trainlab.optim.polynomial_preconditioning import (
    PolynomialPreconditioned,
    apply_polynomial,
    elementary_from_power_traces,
    elementary_symmetric,
    power_traces,
    preconditioner_coefficients,
)


def _esp(values, k):  # brute force over subsets
    return sum(math.prod(c) for c in itertools.combinations(values, k)) if k else 1.0


def _spd(evals, seed=0):
    q, _ = torch.linalg.qr(torch.randn(len(evals), len(evals), dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(seed)))
    return q @ torch.diag(torch.tensor(evals, dtype=torch.float64)) @ q.T


def test_elementary_symmetric_and_newton_identities():
    lam = torch.tensor([3.0, 1.5, 0.7, 0.2, 2.2], dtype=torch.float64)
    ref = torch.tensor([_esp(lam.tolist(), k) for k in range(6)], dtype=torch.float64)
    torch.testing.assert_close(elementary_symmetric(lam, 5), ref)
    traces = torch.stack([(lam ** i).sum() for i in range(1, 6)])
    torch.testing.assert_close(elementary_from_power_traces(traces), ref)


def _horner_rounding_bound(coeffs: torch.Tensor, lam: torch.Tensor) -> float:
    """A priori rounding error of P_tau B's eigenvalues: Horner's rule for a degree-d
    polynomial errs by at most about 2d eps sum_i |c_i| |x|^i (Higham, Accuracy and Stability
    of Numerical Algorithms, 2002, sec. 5.1), here with |x| = ||B|| = lam_max, a factor n for
    each length-n matrix-vector product and ||B|| once more for the product P B. It depends on
    the BLAS's rounding, so a fixed relative tolerance that one torch build meets another
    misses (1.9e-7 on torch 2.13's CPU build, 1.2e-6 on 2.1's)."""
    n, lam_max = len(lam), float(lam.max())
    eps = torch.finfo(torch.float64).eps
    scale = sum(abs(float(c)) * lam_max**i for i, c in enumerate(coeffs))
    return 2 * len(coeffs) * n * eps * scale * lam_max


def test_preconditioned_spectrum_closed_form_and_paper_bound():
    gen = torch.Generator().manual_seed(0)
    for trial in range(20):
        n = 6
        lam = torch.exp(1.5 * torch.randn(n, generator=gen, dtype=torch.float64)).sort(
            descending=True).values
        b = _spd(lam.tolist(), seed=trial)
        sig = elementary_symmetric(lam, n)
        for tau in range(n):
            coeffs = preconditioner_coefficients(sig, tau)
            p = torch.stack([apply_polynomial(b.__matmul__, coeffs, e)
                             for e in torch.eye(n, dtype=torch.float64)], dim=1)
            got = torch.linalg.eigvals(p @ b).real.sort(descending=True).values
            closed = torch.tensor([lam[j] * _esp(torch.cat([lam[:j], lam[j + 1:]]).tolist(), tau)
                                   for j in range(n)], dtype=torch.float64) / sig[tau]
            err = _horner_rounding_bound(coeffs, lam)
            torch.testing.assert_close(got, closed.sort(descending=True).values, rtol=0,
                                       atol=err)
            assert got[0] <= sig[tau + 1] / sig[tau] + err   # L_tau
            # the paper's bound on the condition number, for eigenvalues within err of got
            assert got[0] - err <= lam[tau:].sum() / lam[-1] * (got[-1] + err)
        assert got[0] - got[-1] <= 2 * err  # tau = n - 1: P is sigma_n / sigma_{n-1} B^{-1}


def _quadratic(a, b):
    def make(w):
        def closure():
            w.grad = None
            loss = 0.5 * w @ a @ w - b @ w
            loss.backward()
            return loss
        return closure
    return make


def test_optimizer_matches_eigendecomposition_reference():
    lam = [50.0, 20.0, 3.0, 1.0, 0.5]
    a = _spd(lam, seed=3)
    b = torch.linspace(-1, 1, 5, dtype=torch.float64)
    make = _quadratic(a, b)
    w = torch.nn.Parameter(torch.ones(5, dtype=torch.float64))
    tau, lr = 2, 0.9
    opt = PolynomialPreconditioned([w], lr=lr, tau=tau, curvature="hessian", estimator="exact",
                                   line_search=False)
    evals, q = torch.linalg.eigh(a)
    sig_tau = _esp(evals.tolist(), tau)
    weights = torch.tensor([_esp(torch.cat([evals[:j], evals[j + 1:]]).tolist(), tau) / sig_tau
                            for j in range(5)], dtype=torch.float64)
    p_dense = q @ torch.diag(weights) @ q.T
    step = lr * sig_tau / _esp(evals.tolist(), tau + 1)
    ref = torch.ones(5, dtype=torch.float64)
    for _ in range(3):
        opt.step(make(w))
        ref = ref - step * p_dense @ (a @ ref - b)
    torch.testing.assert_close(w.detach(), ref, rtol=1e-6, atol=1e-9)


def test_cuts_the_top_gap_where_gradient_descent_stalls():
    lam = [1000.0, 100.0, 1.0, 1.0, 0.8, 0.5]
    a = _spd(lam, seed=1)
    b = torch.ones(6, dtype=torch.float64)
    star = torch.linalg.solve(a, b)
    make = _quadratic(a, b)
    w = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
    opt = PolynomialPreconditioned([w], lr=1.0, tau=2, curvature="hessian", estimator="exact",
                                   line_search=False)
    for _ in range(60):
        opt.step(make(w))
    v = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
    gd = torch.optim.SGD([v], lr=1 / 1000.0)
    for _ in range(60):
        make(v)()
        gd.step()
    # kappa: 2000 for GD, at most (1 + 1 + 0.8 + 0.5) / 0.5 = 6.6 after preconditioning
    lam_t = torch.tensor(lam, dtype=torch.float64)
    sig = elementary_symmetric(lam_t, 3)
    spectrum = torch.stack([lam_t[j] * elementary_symmetric(torch.cat([lam_t[:j], lam_t[j + 1:]]),
                                                            2)[2] for j in range(6)]) / sig[2]
    rate = 1 - float(spectrum.min() / (sig[3] / sig[2]))  # 1 - mu / L_tau
    assert rate < 1 - 1 / 6.6

    def gap(x):
        return float(0.5 * (x - star) @ a @ (x - star))

    assert gap(w.detach()) <= rate ** 60 * gap(torch.zeros(6, dtype=torch.float64)) * 1.0001
    assert (w.detach() - star).norm() < 1e-3 * star.norm()
    assert (v.detach() - star).norm() > 1e-2 * star.norm()

def test_line_search_descends_and_beats_the_worst_case_step():
    a = _spd([30.0, 5.0, 1.0, 0.2], seed=2)
    b = torch.ones(4, dtype=torch.float64)
    make = _quadratic(a, b)
    finals = {}
    for search in (True, False):
        w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
        opt = PolynomialPreconditioned([w], lr=1.0, tau=1, curvature="hessian",
                                       estimator="exact", line_search=search)
        losses = [float(opt.step(make(w))) for _ in range(15)]
        assert all(x1 < x0 for x0, x1 in zip(losses, losses[1:]))
        finals[search] = float(make(w)().detach())
    f_star = float(-0.5 * b @ torch.linalg.solve(a, b))
    assert finals[True] - f_star < 0.5 * (finals[False] - f_star)


def test_hutchinson_power_traces_are_unbiased():
    a = _spd([2.0, 1.0, 0.5, 0.3, 0.1], seed=4)
    exact = torch.stack([torch.trace(torch.linalg.matrix_power(a, i)) for i in (1, 2, 3)])
    gen = torch.Generator().manual_seed(0)
    like = torch.zeros(5, dtype=torch.float64)
    draws = torch.stack([power_traces(lambda v: a @ v, 5, like, 3, "hutchinson", 1, gen)
                         for _ in range(800)])
    z = (draws.mean(0) - exact) / (draws.std(0) / 800 ** 0.5)
    assert z.abs().max() < 4.0
    torch.testing.assert_close(power_traces(lambda v: a @ v, 5, like, 3, "exact", 1, None), exact)
