"""Orthogonal and decoupled (Saxe et al. 2014, papers.md row 1) initializations."""

import math

import pytest
import torch

import trainlab.init as tinit


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(32, 32), (48, 16), (16, 48)])
def test_orthogonal_gram_is_identity(shape):
    w = tinit.orthogonal_(torch.empty(*shape, dtype=torch.float64), generator=gen())
    small = min(shape)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    torch.testing.assert_close(gram, torch.eye(small, dtype=torch.float64), atol=1e-12, rtol=0)


def _log_sv_spread(depth, fill):
    g = gen(1)
    prod = torch.eye(64, dtype=torch.float64)
    for _ in range(depth):
        w = torch.empty(64, 64, dtype=torch.float64)
        fill(w, g)
        prod = w @ prod
    return torch.linalg.svdvals(prod)


def test_product_of_orthogonal_layers_keeps_singular_values_at_one_gaussian_spreads():
    ortho = _log_sv_spread(30, lambda w, g: tinit.orthogonal_(w, generator=g))
    torch.testing.assert_close(ortho, torch.ones(64, dtype=torch.float64), atol=1e-9, rtol=0)

    def gauss(w, g):
        w.normal_(0, 1 / math.sqrt(64), generator=g)

    spread = [_log_sv_spread(d, gauss).log().std().item() for d in (2, 10, 30)]
    assert spread[0] < spread[1] < spread[2]
    assert spread[2] > 2.0  # condition number ~ e^{several}: far from isometry


def test_same_generator_same_tensor():
    a = tinit.orthogonal_(torch.empty(8, 5), generator=gen(3))
    b = tinit.orthogonal_(torch.empty(8, 5), generator=gen(3))
    c = tinit.orthogonal_(torch.empty(8, 5), generator=gen(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def _analytic_u(t, s, u0, tau):
    e = math.exp(2 * s * t / tau)
    return s * e / (e - 1 + s / u0)


def test_decoupled_modes_follow_the_closed_form_sigmoid():
    """Saxe et al. eq. for u(t) with whitened inputs: GD from the decoupled init tracks it."""
    n, lam, u0 = 16, 1e-3, 1e-4
    s = torch.tensor([4.0, 3.0, 2.0, 1.0] + [0.0] * 12, dtype=torch.float64)
    g = gen(7)
    u = tinit.orthogonal_(torch.empty(n, n, dtype=torch.float64), generator=g)
    v = tinit.orthogonal_(torch.empty(n, n, dtype=torch.float64), generator=g)
    corr = u @ torch.diag(s) @ v.T  # Sigma31, inputs whitened (Sigma11 = I)
    w1, w2 = torch.empty(n, n, dtype=torch.float64), torch.empty(n, n, dtype=torch.float64)
    tinit.decoupled_([w1, w2], corr, u0, generator=g)
    start = u.T @ (w2 @ w1) @ v  # diag(u0) on the 4 data modes, no cross-talk
    torch.testing.assert_close(start[:4, :4], u0 * torch.eye(4, dtype=torch.float64),
                               atol=1e-15, rtol=0)
    worst = 0.0
    for t in range(1, 8001):
        err = corr - w2 @ w1
        w1, w2 = w1 + lam * w2.T @ err, w2 + lam * err @ w1.T
        if t % 250 == 0:
            modes = torch.einsum("ia,ij,ja->a", u, w2 @ w1, v)
            for a in range(4):
                ua = _analytic_u(t, s[a].item(), u0, 1 / lam)
                worst = max(worst, abs(modes[a].item() - ua) / s[a].item())
    assert worst < 0.006


def test_model_level_decoupled_aligns_with_data_modes():
    model = torch.nn.Sequential(torch.nn.Linear(6, 10, bias=False),
                                torch.nn.Linear(10, 4, bias=False)).double()
    x = torch.randn(50, 6, generator=gen(), dtype=torch.float64)
    y = x @ torch.randn(6, 4, generator=gen(1), dtype=torch.float64)
    tinit.apply(model, "decoupled", batch=(x, y), generator=gen(2), mode_strength=1e-2)
    uu, _, vh = torch.linalg.svd(y.T @ x, full_matrices=False)
    prod = model[1].weight @ model[0].weight
    torch.testing.assert_close(prod, 1e-2 * uu @ vh, atol=1e-12, rtol=0)
