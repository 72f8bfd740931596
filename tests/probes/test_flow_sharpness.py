"""GFS sharpness on a scalar network f(x) = w1 w2 w3 x with the square loss, where the
gradient-flow solution is known in closed form: the flow keeps w_i^2 - w_j^2 constant, so it
ends at w_i*^2 = w_i^2 + c with prod_i w_i* = pi* (the data's slope), and the Hessian there
is E[x^2] grad(pi) grad(pi)^T, of top eigenvalue E[x^2] sum_i (pi*/w_i*)^2."""

from __future__ import annotations

import math

import pytest
import torch
from _probe_helpers import assert_unchanged, snapshot
from torch import nn

from trainlab.analyses.gradient_flow import gfs_sharpness, gradient_flow
from trainlab.probes import ProbeContext
from trainlab.probes.flow_sharpness import GFSSharpnessProbe

X = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64)
Y = 2.0 * X  # consistent data: the global minima are prod(w) = 2


class Scalar(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))

    def forward(self, x):
        return self.w.prod() * x


def sq_loss(out, y):
    return 0.5 * (out - y).pow(2).mean()


def closed_form_gfs_sharpness(w: torch.Tensor, slope: float = 2.0) -> float:
    """Bisection for the common shift c with prod sqrt(w_i^2 + c) = |slope|."""
    sq = w.detach().pow(2)
    f = lambda c: float(torch.sqrt(sq + c).prod()) - abs(slope)  # noqa: E731
    lo, hi = -float(sq.min()), 1.0
    while f(hi) < 0:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    c = 0.5 * (lo + hi)
    return float(X.pow(2).mean()) * float((slope ** 2 / (sq + c)).sum())


def test_flow_reaches_the_closed_form_solution():
    model = Scalar([1.2, 0.7, 1.5])
    flow = gradient_flow(model, sq_loss, (X, Y), grad_tol=1e-11, max_evals=20000)
    assert flow.converged and flow.loss < 1e-20
    w0, w1 = model.w.detach(), flow.params["w"]
    assert float(w1.prod()) == pytest.approx(2.0, abs=1e-10)
    d = w1.pow(2) - w0.pow(2)  # the conserved differences: one common shift
    assert torch.allclose(d, d.mean().expand(3), atol=1e-7)
    res = gfs_sharpness(model, sq_loss, (X, Y), grad_tol=1e-11, max_evals=20000, rtol=1e-9,
                        atol=1e-12, generator=torch.Generator().manual_seed(0))
    assert res.value == pytest.approx(closed_form_gfs_sharpness(w0), rel=1e-8)


@pytest.mark.parametrize("eta_times_s0", [1.6, 2.4])
def test_gd_decreases_gfs_sharpness_monotonically(eta_times_s0):
    """Below and beyond 2/eta (edge of stability): the measured GFS sharpness matches the
    closed form at every checked iterate and never increases along GD."""
    model = Scalar([1.6, 0.5, 1.1])
    lr = eta_times_s0 / closed_form_gfs_sharpness(model.w)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    probe = GFSSharpnessProbe(grad_tol=1e-10, max_evals=20000)
    exact, measured = [], []
    for step in range(40):
        opt.zero_grad()
        loss = sq_loss(model(X), Y)
        loss.backward()
        exact.append(closed_form_gfs_sharpness(model.w))
        if step % 8 == 0:
            ctx = ProbeContext(step=step, model=model, loss_fn=sq_loss, batch=(X, Y),
                               loss=loss.detach(), lr=lr, generator=torch.Generator())
            snap = snapshot(model)
            out = probe.measure(ctx)
            assert_unchanged(model, snap)
            assert out["gfs/converged"] == 1.0
            measured.append(out["gfs/sharpness"])
            # the probe's default local tolerance (rtol 1e-6) drifts ~1e-7 along the flow
            assert out["gfs/sharpness"] == pytest.approx(exact[-1], rel=1e-5)
            assert out["gfs/eos_ratio"] == pytest.approx(lr * exact[-1] / 2, rel=1e-5)
        opt.step()
    assert all(b <= a * (1 + 1e-12) for a, b in zip(exact, exact[1:]))
    assert all(b <= a * (1 + 1e-5) for a, b in zip(measured, measured[1:]))
    if eta_times_s0 > 2:  # beyond the edge: GD moves to flatter solutions, towards 2/eta
        assert 2.0 < lr * exact[-1] < 0.5 * (2.0 + lr * exact[0])
    assert math.isfinite(exact[-1])


def test_budget_exhausted_is_reported():
    model = Scalar([1.2, 0.7, 1.5])
    flow = gradient_flow(model, sq_loss, (X, Y), grad_tol=1e-11, max_evals=10)
    assert not flow.converged and flow.grad_evals <= 10
