"""Trace, Frobenius and spectral-density estimators against dense float64 spectra."""

from __future__ import annotations

import pytest
import torch
from curvature_reference import DT, classification_batch, dense_ggn, dense_hessian, mlp
from torch import nn

from trainlab.curvature import (
    GGNOperator,
    HessianOperator,
    MatrixOperator,
    frobenius_norm,
    hutchinson_trace,
    hutchpp_trace,
    lanczos_quadrature,
    spectral_density,
)
from trainlab.errors import ConfigError


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def hess():
    model, (x, y) = mlp(), classification_batch()
    return model, x, y, dense_hessian(model, nn.CrossEntropyLoss(), x, y)


def z_scores(estimator, a: torch.Tensor, truth: float, reps: int, m: int) -> torch.Tensor:
    est = [estimator(a, num_matvecs=m, generator=gen(s)) for s in range(reps)]
    return torch.tensor([(e.value - truth) / e.stderr for e in est])


@pytest.mark.parametrize("estimator", [hutchinson_trace, hutchpp_trace])
def test_trace_errors_match_reported_standard_error(hess, estimator):
    """Over many seeds, (estimate - trace) / stderr behaves like a standard t variable."""
    *_, a = hess
    z = z_scores(estimator, a, torch.trace(a).item(), reps=300, m=30)
    assert abs(z.mean()) < 0.25
    assert 0.8 < z.std() < 1.3
    assert (z.abs() > 3.5).float().mean() < 0.02


def test_hutchinson_stderr_matches_theoretical_variance(hess):
    *_, a = hess
    var = 2 * (a.square().sum() - a.diagonal().square().sum()).item()  # Rademacher, 1 probe
    m = 40
    se2 = torch.tensor([hutchinson_trace(a, num_matvecs=m, generator=gen(s)).stderr ** 2 * m
                        for s in range(200)])
    assert abs(se2.mean().item() / var - 1) < 0.1


def test_hutchinson_on_the_operator_is_within_its_stderr(hess):
    model, x, y, a = hess
    op = HessianOperator(model, nn.CrossEntropyLoss(), (x, y))
    est = hutchinson_trace(op, num_matvecs=50, generator=gen(0))
    assert est.matvecs == 50 and est.samples.shape == (50,)
    assert abs(est.value - torch.trace(a).item()) <= 4 * est.stderr


def test_hutchpp_is_exact_once_the_sketch_covers_the_rank():
    """The GGN of N samples and C classes (CE) has rank <= N (C - 1) < dim: a sketch of that
    many columns captures its range, so Hutch++ returns the exact trace with stderr 0."""
    model, (x, y) = mlp(), classification_batch(n=4)
    g = dense_ggn(model, nn.CrossEntropyLoss(), x, y)
    assert torch.linalg.matrix_rank(g).item() <= 8 < g.shape[0]
    op = GGNOperator(model, nn.CrossEntropyLoss(), (x, y))
    est = hutchpp_trace(op, num_matvecs=27, generator=gen(1))  # sketch of 9 >= rank
    assert est.value == pytest.approx(torch.trace(g).item(), rel=1e-10)
    assert est.stderr < 1e-10 * abs(est.value)
    short = hutchpp_trace(op, num_matvecs=12, generator=gen(1))  # sketch of 4 < rank
    assert short.stderr > 1e-6 * abs(est.value)


def test_hutchpp_beats_hutchinson_on_a_decaying_spectrum():
    """The paper's claim: at equal products, lower error when the spectrum decays."""
    q = torch.linalg.qr(torch.randn(80, 80, generator=gen(0), dtype=DT)).Q
    a = q @ torch.diag(1.0 / torch.arange(1, 81, dtype=DT) ** 2) @ q.T
    tr = torch.trace(a).item()
    err_h = torch.tensor([hutchinson_trace(a, num_matvecs=30, generator=gen(s)).value - tr
                          for s in range(100)]).square().mean()
    err_pp = torch.tensor([hutchpp_trace(a, num_matvecs=30, generator=gen(s)).value - tr
                           for s in range(100)]).square().mean()
    assert err_pp < err_h / 10


def test_frobenius_norm_within_stderr(hess):
    *_, a = hess
    truth = torch.linalg.matrix_norm(a).item()
    z = torch.tensor([(e.value - truth) / e.stderr for e in
                      (frobenius_norm(a, num_matvecs=40, generator=gen(s)) for s in range(200))])
    assert abs(z.mean()) < 0.3 and 0.7 < z.std() < 1.4
    est = frobenius_norm(a, num_matvecs=2000, generator=gen(0))
    assert est.value == pytest.approx(truth, rel=0.05)


def test_quadrature_reproduces_moments_exactly(hess):
    *_, a = hess
    v = torch.randn(a.shape[0], generator=gen(3), dtype=DT)
    steps = 6
    nodes, weights, used = lanczos_quadrature(a, v, steps)
    assert used == steps and weights.sum().item() == pytest.approx(1.0, abs=1e-12)
    u, power = v / v.norm(), torch.eye(a.shape[0], dtype=DT)
    for k in range(2 * steps):
        assert (weights * nodes ** k).sum().item() == pytest.approx((u @ power @ u).item(),
                                                                    rel=1e-8, abs=1e-14)
        power = power @ a


def test_spectral_density_against_the_dense_spectrum(hess):
    model, x, y, a = hess
    ev = torch.linalg.eigvalsh(a)
    op = HessianOperator(model, nn.CrossEntropyLoss(), (x, y))
    full = spectral_density(op, num_probes=1, num_steps=op.dim, generator=gen(0))
    assert torch.allclose(full.nodes[0].sort().values, ev, atol=1e-9)  # all eigenvalues
    dens = spectral_density(MatrixOperator(a), num_probes=40, num_steps=20, generator=gen(1))
    grid = torch.linspace(ev[0].item() - 0.1, ev[-1].item() + 0.1, 400, dtype=DT)
    ecdf = (grid[:, None] >= ev).double().mean(dim=1)
    step = (grid[1] - grid[0]).item()
    wasserstein = (dens.cdf(grid) - ecdf).abs().sum().item() * step
    assert wasserstein < 0.02 * (ev[-1] - ev[0]).item()
    sigma = 0.02
    smooth = (torch.exp(-0.5 * ((grid[:, None] - ev) / sigma) ** 2).mean(dim=1)
              / (sigma * (2 * torch.pi) ** 0.5))
    assert (dens.density(grid, sigma) - smooth).abs().sum().item() * step < 0.2
    assert dens.density(grid, sigma).sum().item() * step == pytest.approx(1.0, abs=1e-3)
    assert a.shape[0] * dens.moment(1) == pytest.approx(torch.trace(a).item(), rel=0.3)
    assert dens.matvecs == 40 * 20


def test_estimator_errors_and_determinism(hess):
    *_, a = hess
    for fn in (hutchinson_trace, frobenius_norm):
        with pytest.raises(ConfigError, match="num_matvecs"):
            fn(a, num_matvecs=0)
    with pytest.raises(ConfigError, match="num_matvecs"):
        hutchpp_trace(a, num_matvecs=2)
    with pytest.raises(ConfigError, match="distribution"):
        hutchinson_trace(a, distribution="uniform")
    with pytest.raises(ConfigError, match="sigma"):
        spectral_density(a, num_steps=3, generator=gen(0)).density(torch.zeros(1), 0.0)
    r1 = hutchpp_trace(a, num_matvecs=9, generator=gen(5))
    r2 = hutchpp_trace(a, num_matvecs=9, generator=gen(5))
    assert r1.value == r2.value
    one = hutchinson_trace(a, num_matvecs=1, generator=gen(0))
    assert one.stderr != one.stderr  # nan: no spread from one sample
