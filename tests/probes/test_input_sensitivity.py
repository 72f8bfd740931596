"""Loss-derivative sensitivity (row 25): exact diagonal derivatives against a closed-form
polynomial, dense float64 torch.func references (jacrev / hessian / jacfwd of hessian) and
central differences; the first-layer-weight reading against its closed form at w = 0;
Spearman against scipy; and the probe."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import assert_unchanged, batch, context, mlp, snapshot
from scipy.stats import spearmanr
from torch import nn
from torch.func import functional_call, hessian, jacfwd, jacrev

from trainlab.analyses.input_derivatives import first_layer_weight, input_derivatives, spearman
from trainlab.errors import ConfigError
from trainlab.probes import ProbeContext
from trainlab.probes.input_sensitivity import (
    InputSensitivity,
    rank_correlations,
    target_correlations,
)

A = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)


class Poly(nn.Module):
    """out_i = sum_j a_j x_ij^4 + 3 x_i0 x_i1 (a cross term, absent from the diagonals)."""

    def forward(self, x):
        return (A * x.pow(4)).sum(1) + 3 * x[:, 0] * x[:, 1]


def identity_loss(out, _y):
    return out.mean()


def test_polynomial_closed_form():
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    d = input_derivatives(Poly(), identity_loss, x, torch.zeros(6), chunk=3)
    cross = torch.zeros_like(x)
    cross[:, 0], cross[:, 1] = 3 * x[:, 1], 3 * x[:, 0]
    torch.testing.assert_close(d.d1, 4 * A * x.pow(3) + cross)
    torch.testing.assert_close(d.d2, 12 * A * x.pow(2))
    torch.testing.assert_close(d.d3, 24 * A * x)
    torch.testing.assert_close(d.scores()[2], (24 * A * x).abs().mean(0))


def test_inputs_against_dense_float64_reference():
    """Per example: gradient, Hessian diagonal and third-derivative diagonal of l_i(x_i) by
    dense torch.func transforms."""
    model = mlp(seed=5)
    x, y = batch(n=3)
    d = input_derivatives(model, F.cross_entropy, x, y, chunk=2)
    for i in range(3):
        def li(xi, i=i):
            return F.cross_entropy(model(xi.unsqueeze(0)), y[i:i + 1])

        g, h, t = jacrev(li)(x[i]), hessian(li)(x[i]), jacfwd(hessian(li))(x[i])
        j = torch.arange(5)
        torch.testing.assert_close(d.d1[i], g)
        torch.testing.assert_close(d.d2[i], h[j, j])
        torch.testing.assert_close(d.d3[i], t[j, j, j])


def tanh_unit(w: torch.Tensor, b: float = 0.0) -> nn.Module:
    net = nn.Linear(len(w), 1).double()
    with torch.no_grad():
        net.weight.copy_(w.unsqueeze(0))
        net.bias.fill_(b)
    return nn.Sequential(net, nn.Tanh())


def mse(out, t):
    return (out.squeeze(-1) - t).pow(2).mean()


def test_weights_closed_form_at_zero():
    """One tanh unit at w = 0, b = 0 with MSE: d/dw_j = -2 mean(y x_j), d2 = 2 mean(x_j^2),
    d3 = 4 mean(y x_j^3) (Taylor expansion of (tanh(s x) - y)^2 at s = 0)."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(30, 4, dtype=torch.float64, generator=g)
    y = x[:, 0] - 0.5 * x[:, 2] + 0.1 * torch.randn(30, dtype=torch.float64, generator=g)
    model = tanh_unit(torch.zeros(4, dtype=torch.float64))
    snap = snapshot(model)
    d = input_derivatives(model, mse, x, y, wrt="weights", chunk=3)
    assert_unchanged(model, snap)
    assert d.d1.shape == (1, 4)
    torch.testing.assert_close(d.d1[0], -2 * (y[:, None] * x).mean(0))
    torch.testing.assert_close(d.d2[0], 2 * (x ** 2).mean(0))
    torch.testing.assert_close(d.d3[0], 4 * (y[:, None] * x ** 3).mean(0))
    # the first derivative ranks the variables as their covariance with the target does
    assert spearman(d.scores()[0], (y[:, None] * x).mean(0).abs()).item() == pytest.approx(1.0)


def test_weights_against_dense_float64_reference():
    model = mlp(seed=4)
    x, y = batch(n=6)
    d = input_derivatives(model, F.cross_entropy, x, y, wrt="weights", chunk=8)
    name = first_layer_weight(model, 5)
    assert name == "0.weight"
    params = {k: p.detach() for k, p in model.named_parameters()}

    def loss(w):
        return F.cross_entropy(functional_call(model, {**params, name: w}, (x,)), y)

    w = params[name].reshape(-1)
    flat = lambda v: loss(v.reshape(7, 5))  # noqa: E731
    g, h, t = jacrev(flat)(w), hessian(flat)(w), jacfwd(hessian(flat))(w)
    j = torch.arange(35)
    torch.testing.assert_close(d.d1.reshape(-1), g)
    torch.testing.assert_close(d.d2.reshape(-1), h[j, j])
    torch.testing.assert_close(d.d3.reshape(-1), t[j, j, j])
    torch.testing.assert_close(d.scores()[1], d.d2.abs().mean(0))
    with pytest.raises(ConfigError, match="wrt"):
        input_derivatives(model, F.cross_entropy, x, y, wrt="params")
    with pytest.raises(ConfigError, match="columns"):
        input_derivatives(model, F.cross_entropy, x[:, :4], y, wrt="weights")
    with pytest.raises(ConfigError, match="wrt"):
        InputSensitivity(wrt="params")


def per_example_loss(model, x, y, i, j, t):
    xi = x[i:i + 1].clone()
    xi.view(-1)[j] += t
    return F.cross_entropy(model(xi), y[i:i + 1]).item()


def test_mlp_against_central_differences():
    model = mlp(seed=3)
    x, y = batch(n=4)
    d = input_derivatives(model, F.cross_entropy, x, y, chunk=2)
    h = 1e-3
    for i in range(4):
        for j in range(5):
            f = lambda t, i=i, j=j: per_example_loss(model, x, y, i, j, t)  # noqa: E731
            d1 = (f(h) - f(-h)) / (2 * h)
            d2 = (f(h) - 2 * f(0.0) + f(-h)) / h ** 2
            d3 = (f(2 * h) - 2 * f(h) + 2 * f(-h) - f(-2 * h)) / (2 * h ** 3)
            assert d.d1[i, j].item() == pytest.approx(d1, abs=1e-6)
            assert d.d2[i, j].item() == pytest.approx(d2, abs=1e-5)
            assert d.d3[i, j].item() == pytest.approx(d3, abs=1e-4)


def test_spearman_matches_scipy_with_ties():
    g = torch.Generator().manual_seed(1)
    a = torch.randint(0, 4, (30,), generator=g).double()
    b = a + torch.randn(30, generator=g, dtype=torch.float64)
    assert spearman(a, b).item() == pytest.approx(spearmanr(a.numpy(), b.numpy())[0], rel=1e-12)
    scores = torch.stack([a, b, -b])
    rc = rank_correlations(scores)
    assert rc["23"].item() == pytest.approx(-1.0)
    assert rc["12"].item() == pytest.approx(-rc["13"].item())
    x = torch.randn(20, 3, generator=g, dtype=torch.float64)
    y = x[:, 1] ** 3
    rho = target_correlations(x, y)
    assert rho[1].item() == pytest.approx(1.0)
    assert rho[0].item() == pytest.approx(spearmanr(x[:, 0].numpy(), y.numpy())[0], rel=1e-12)
    with pytest.raises(ConfigError):
        spearman(a, b[:5])


def test_probe_reports_and_leaves_model_unchanged():
    model = mlp()
    x, y = batch()
    ctx = context(model, x, y)
    snap = snapshot(model)
    out = InputSensitivity(max_examples=8).measure(ctx)
    assert_unchanged(model, snap)
    scores = input_derivatives(model, F.cross_entropy, x[:8], y[:8]).scores()
    assert out["sensitivity/rank_corr_12"].item() == pytest.approx(
        spearmanr(scores[0].numpy(), scores[1].numpy())[0], rel=1e-10)
    assert out["sensitivity/d3_top"] == float(scores[2].argmax())
    assert "sensitivity/target_corr_1" not in out  # class labels: no variable-target rho
    # a regression target: the paper's comparison with the variable-target correlation
    reg = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    yr = x[:, 2] * 2 + 0.1 * x[:, 0]
    ctx = context(reg, x, yr, loss_fn=lambda o, t: (o.squeeze(-1) - t).pow(2).mean())
    out = InputSensitivity().measure(ctx)
    assert {"sensitivity/target_corr_1", "sensitivity/target_corr_3"} <= set(out)
    tokens = ProbeContext(step=0, model=mlp(), loss_fn=F.cross_entropy, batch=(x.long(), y))
    assert InputSensitivity().measure(tokens) == {}
    ctx = context(mlp(), x, y)
    out = InputSensitivity(wrt="weights").measure(ctx)
    scores = input_derivatives(ctx.model, F.cross_entropy, x, y, wrt="weights").scores()
    assert out["sensitivity/d2_top"] == float(scores[1].argmax())
    assert out["sensitivity/rank_corr_13"].item() == pytest.approx(
        spearmanr(scores[0].numpy(), scores[2].numpy())[0], rel=1e-10)
