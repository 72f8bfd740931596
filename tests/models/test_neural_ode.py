"""Locally regularized neural ODEs (papers.md row 87): the embedded error against the
tableau's stability polynomials, R = 0 for a constant field, the solve against expm, and
descent on R lowering the adaptive solver's function evaluations."""

import numpy as np
import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models import MODELS, build_model
from trainlab.models.neural_ode import DOPRI5, NeuralODE, embedded_error, local_error_regularizer

D = torch.float64


class Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=D).clone())

    def forward(self, t, y):
        return y @ self.w.T


class Constant(nn.Module):
    def forward(self, t, y):
        return torch.ones_like(y)


def _stability(z: float) -> tuple[float, float]:
    # R(z) = 1 + z b^T (I - z A)^{-1} 1 for the 5th-order and the embedded 4th-order weights
    s = len(DOPRI5.beta) + 1
    a = np.zeros((s, s))
    for i, row in enumerate(DOPRI5.beta):
        a[i + 1, : len(row)] = row.numpy()
    b = DOPRI5.c_sol.numpy()
    b_hat = b - DOPRI5.c_error.numpy()
    stages = np.linalg.solve(np.eye(s) - z * a, np.ones(s))
    return 1 + z * b @ stages, 1 + z * b_hat @ stages


@pytest.mark.parametrize("lam,dt", [(-2.0, 0.3), (1.5, 0.1), (-20.0, 0.2)])
def test_embedded_error_equals_stability_polynomial_difference(lam, dt):
    y0 = torch.tensor([0.7, -1.3], dtype=D)
    with torch.no_grad():
        y1, err = embedded_error(Linear([[lam, 0.0], [0.0, lam]]), torch.tensor(0.0, dtype=D),
                                 y0, torch.tensor(dt, dtype=D))
    r, r_hat = _stability(lam * dt)
    assert torch.allclose(y1, r * y0, rtol=1e-13, atol=1e-14)
    assert torch.allclose(err, (r - r_hat) * y0, rtol=1e-10, atol=1e-15)


def test_constant_field_has_zero_regularizer():
    r = local_error_regularizer(Constant(), torch.randn(4, 3, dtype=D), t_reg=0.4)
    assert float(r) < 1e-9  # the error weights sum to 0: roundoff / tolerance only


def test_solve_matches_matrix_exponential_and_counts_evaluations():
    w = torch.tensor([[-0.5, 2.0], [-2.0, -0.5]], dtype=D)
    model = NeuralODE(Linear(w), t1=1.5, rtol=1e-9, atol=1e-9)
    y0 = torch.tensor([[1.0, 0.0], [0.3, -0.2]], dtype=D)
    with torch.no_grad():
        out = model(y0)
    assert torch.allclose(out, y0 @ torch.linalg.matrix_exp(1.5 * w).T, atol=1e-7)
    assert model.nfe(y0) > 0 and model.nfe(y0) == model.nfe(y0)


def test_regularizer_is_reproducible_differentiable_and_descent_lowers_nfe():
    model = NeuralODE(Linear([[-1.0, 8.0], [-8.0, -1.0]]))
    y0 = torch.randn(16, 2, dtype=D, generator=torch.Generator().manual_seed(0))
    r1 = model.regularizer(y0, generator=torch.Generator().manual_seed(3))
    r2 = model.regularizer(y0, generator=torch.Generator().manual_seed(3))
    assert float(r1.detach()) == float(r2.detach()) > 0
    (grad,) = torch.autograd.grad(r1, model.field.field.w)
    assert torch.isfinite(grad).all() and float(grad.abs().max()) > 0
    before = model.nfe(y0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    for _ in range(15):
        opt.zero_grad()
        model.regularizer(y0, generator=gen).backward()
        opt.step()
    assert model.nfe(y0) < before


def test_bad_arguments():
    with pytest.raises(ConfigError, match="t_reg"):
        local_error_regularizer(Constant(), torch.zeros(2, dtype=D), t_reg=2.0)
    with pytest.raises(ConfigError, match="rtol"):
        NeuralODE(Constant(), rtol=0.0)
    with pytest.raises(ConfigError, match="num_outputs"):
        build_model("neural-ode", (3,), 2)
    model = build_model("neural-ode", (3,), 3, width=4)
    assert model(torch.zeros(2, 3)).shape == (2, 3)
    assert MODELS.entry("neural-ode").papers == (87,)
