"""The input derivatives of trainlab.pinn against closed forms and nested autograd."""

import logging

import pytest
import torch
from torch import nn

import trainlab.pinn.derivatives as derivatives
from trainlab.pinn.derivatives import jet


def test_closed_form_derivatives_of_a_known_function():
    x = torch.rand(7, 2, dtype=torch.float64)

    def f(p):  # u = sin(a) exp(b), two outputs
        return torch.stack([torch.sin(p[0]) * torch.exp(p[1]), p[0] ** 3 * p[1]])

    j = jet(f, x)
    a, b = x[:, 0], x[:, 1]
    torch.testing.assert_close(j.u[:, 0], torch.sin(a) * torch.exp(b))
    torch.testing.assert_close(j.d(0)[:, 0], torch.cos(a) * torch.exp(b))
    torch.testing.assert_close(j.d(1)[:, 1], a ** 3)
    torch.testing.assert_close(j.dd(0, 1)[:, 0], torch.cos(a) * torch.exp(b))
    torch.testing.assert_close(j.laplacian()[:, 0], torch.zeros_like(a))  # harmonic
    torch.testing.assert_close(j.laplacian([0])[:, 1], 6 * a * b)


def test_network_laplacian_matches_nested_autograd_and_carries_parameter_gradients():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    x = torch.rand(5, 3, dtype=torch.float64, requires_grad=True)
    j = jet(net, x.detach())
    u = net(x).sum()
    (g,) = torch.autograd.grad(u, x, create_graph=True)
    lap = sum(torch.autograd.grad(g[:, i].sum(), x, retain_graph=True)[0][:, i]
              for i in range(3))
    torch.testing.assert_close(j.laplacian()[:, 0], lap.detach(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(j.grad[:, 0, :], g.detach(), rtol=1e-12, atol=1e-14)
    j.laplacian().sum().backward()  # differentiable in the parameters
    assert net[0].weight.grad is not None and torch.isfinite(net[0].weight.grad).all()


def test_order_one_has_no_hessian_and_bad_order_is_rejected():
    j = jet(lambda p: p[:1] * 2, torch.ones(2, 2), order=1)
    assert j.hess is None and torch.equal(j.d(0), torch.full((2, 1), 2.0))
    with pytest.raises(ValueError, match="order=2"):
        j.laplacian()
    with pytest.raises(ValueError, match="'order'"):
        jet(lambda p: p, torch.ones(2, 2), order=3)
    j0 = jet(lambda p: p[:1] * 2, torch.ones(2, 2), order=0)
    assert torch.equal(j0.u, torch.full((2, 1), 2.0)) and j0.grad is None
    with pytest.raises(ValueError, match="order >= 1"):
        j0.d(0)


@pytest.mark.parametrize("native", [True, False])
def test_jet_under_inference_mode_equals_grad_mode(monkeypatch, caplog, native):
    # native=False forces the fallback of torches without forward-mode AD batching under
    # inference mode (torch 2.6); native=True is this torch's own path (the fallback too
    # where the probe finds the rule missing)
    if not native:
        monkeypatch.setattr(derivatives, "_forward_ad_in_inference_mode", lambda: False)
        derivatives._warn_inference_fallback.cache_clear()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    x = torch.rand(6, 2, dtype=torch.float64)
    ref = jet(net, x)
    with caplog.at_level(logging.WARNING, logger="trainlab"), torch.inference_mode():
        out = jet(net, x)
    for a, b in ((ref.u, out.u), (ref.grad, out.grad), (ref.hess, out.hess)):
        assert torch.equal(a, b)
    fallback = not native or not derivatives._forward_ad_in_inference_mode()
    assert ("torch.inference_mode" in caplog.text) == fallback
