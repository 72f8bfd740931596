"""Forward gradients (unbiasedness, guess projections) and straight-through/ReinMax."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim.estimators import (
    forward_gradient,
    model_forward_gradient,
    reinmax,
    straight_through,
)

from .._tiny_mlp import batch, mse, tiny_mlp


def _true_grad(model, x, y):
    model.zero_grad()
    mse(model(x), y).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_random_forward_gradient_is_unbiased():
    a = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0, 0.2], dtype=torch.float64)
    w = {"w": torch.linspace(-1, 1, 6, dtype=torch.float64)}

    def f(p):
        return (a * torch.tanh(p["w"])).sum() + 0.5 * (p["w"] ** 2).sum()

    true = a / torch.cosh(w["w"]) ** 2 + w["w"]
    gen = torch.Generator().manual_seed(0)
    n = 1500
    draws = torch.stack([forward_gradient(f, w, generator=gen).estimate["w"] for _ in range(n)])
    mean, se = draws.mean(0), draws.std(0) / n ** 0.5
    z = (mean - true) / se
    assert z.abs().max() < 4.0  # each coordinate within its CLT bound
    two = forward_gradient(f, w, num_directions=2, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    singles = [forward_gradient(f, w, generator=gen).estimate["w"] for _ in range(2)]
    torch.testing.assert_close(two.estimate["w"], (singles[0] + singles[1]) / 2)


def test_guess_projection_is_exact_for_aligned_guess_and_zero_for_orthogonal():
    model, (x, y) = tiny_mlp(), batch()
    true = _true_grad(model, x, y)
    fg = model_forward_gradient(model, mse, x, y, guesses=[{n: 3 * t for n, t in true.items()}])
    for n in true:
        torch.testing.assert_close(fg.estimate[n], true[n])
    assert fg.alignment(true) == pytest.approx(1.0)
    flat = torch.cat([t.reshape(-1) for t in true.values()])
    other = torch.randn(flat.shape, generator=torch.Generator().manual_seed(1), dtype=flat.dtype)
    other -= (other @ flat) / (flat @ flat) * flat
    sizes = [t.numel() for t in true.values()]
    guess = {n: c.view_as(t) for (n, t), c in zip(true.items(), torch.split(other, sizes))}
    est = model_forward_gradient(model, mse, x, y, guesses=[guess]).estimate
    assert max(t.abs().max().item() for t in est.values()) < 1e-12


def test_forward_gradient_errors_and_no_grad_side_effects():
    model, (x, y) = tiny_mlp(), batch()
    model_forward_gradient(model, mse, x, y, generator=torch.Generator().manual_seed(0))
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ConfigError, match="num_directions"):
        forward_gradient(lambda p: p["w"].sum(), {"w": torch.zeros(2)}, num_directions=0)


def _jac(p):
    return torch.diag(p) - torch.outer(p, p)


def test_straight_through_gradient_is_softmax_jacobian():
    logits = torch.tensor([0.3, -1.0, 2.0, 0.5], dtype=torch.float64, requires_grad=True)
    g_out = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    out = straight_through(logits, tau=2.0, generator=torch.Generator().manual_seed(0))
    assert out.detach().sum() == 1 and set(out.detach().tolist()) <= {0.0, 1.0}
    (out * g_out).sum().backward()
    p_tau = (logits.detach() / 2.0).softmax(-1)
    torch.testing.assert_close(logits.grad, _jac(p_tau) @ g_out / 2.0)


def test_reinmax_gradient_matches_definition():
    logits = torch.tensor([0.3, -1.0, 2.0, 0.5], dtype=torch.float64, requires_grad=True)
    g_out = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    out = reinmax(logits, tau=1.5, generator=torch.Generator().manual_seed(0))
    (out * g_out).sum().backward()
    pi0 = logits.detach().softmax(-1)
    pi1 = 0.5 * (out.detach() + (logits.detach() / 1.5).softmax(-1))
    ref = 2 * _jac(pi1) @ g_out - 0.5 * _jac(pi0) @ g_out
    torch.testing.assert_close(logits.grad, ref - ref.mean())
    with pytest.raises(ConfigError, match="tau"):
        reinmax(logits, tau=0.5)


def test_samples_follow_the_categorical_distribution():
    logits = torch.tensor([[0.0, 1.0, -1.0]], dtype=torch.float64).expand(20000, 3)
    gen = torch.Generator().manual_seed(0)
    freq = reinmax(logits, generator=gen).mean(0)
    torch.testing.assert_close(freq, logits[0].softmax(-1), atol=0.015, rtol=0)
