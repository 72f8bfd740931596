"""Maxout constants and depth-stable moments (Tseran & Montufar 2023, papers.md row 17)."""

import math

import pytest
import torch
from scipy import integrate, stats

import trainlab.init as tinit
from trainlab.models import build_model


@pytest.mark.parametrize(("k", "paper"), [(2, 1.0), (3, 1.27566), (4, 1.55133), (5, 1.80002)])
def test_second_moment_of_max_matches_quadrature_and_paper(k, paper):
    ref = integrate.quad(lambda t: t * t * k * stats.norm.pdf(t) * stats.norm.cdf(t) ** (k - 1),
                         -math.inf, math.inf)[0]
    assert tinit.maxout_second_moment(k) == pytest.approx(ref, rel=1e-8)
    assert tinit.maxout_second_moment(k) == pytest.approx(paper, abs=1e-5)
    assert tinit.maxout_constant(3) == pytest.approx(0.78391, abs=1e-5)


def _moments(c_scale, depth=20, width=200, rank=5):
    model = build_model("maxout-mlp", (width,), 1, depth=depth, width=width, rank=rank).double()
    g = torch.Generator().manual_seed(0)
    tinit.apply(model, "maxout", generator=g)
    with torch.no_grad():
        for block in list(model)[1:-1]:
            block.linear.weight.mul_(math.sqrt(c_scale))
    x = torch.randn(32, width, generator=g, dtype=torch.float64)
    norms, h = [], x
    for block in list(model)[1:-1]:
        h = block(h)
        norms.append((h.pow(2).sum(1) / x.pow(2).sum(1)).mean().item())
    return norms


def test_forward_moment_is_stable_at_paper_constant_and_drifts_otherwise():
    good = _moments(1.0)
    assert all(0.6 < v < 1.6 for v in good)
    big = _moments(tinit.maxout_second_moment(5))  # c = 1: ratio M_K per layer
    assert big[-1] > 100
    tiny = _moments(0.1 * tinit.maxout_second_moment(5))  # c = 0.1
    assert tiny[-1] < 1e-10


# --- the paper's gradient claim -------------------------------------------------------------
# Reference network written here from the paper's setup: L maxout layers of width n, rank K,
# zero biases, pieces N(0, c / fan_in) drawn with maxout_normal_ (scaled for other c), then a
# linear readout N(0, 1 / n) (c = 1). R independent initializations are run as one batch.

from trainlab.init.maxout import maxout_chi2_order_moments  # noqa: E402

AUTHORS_C = {2: 1.0, 3: 0.78391, 4: 0.64461, 5: 0.55555}  # maxout_expected_gradients m_dict
AUTHORS_RECIPROCAL_BOUNDS = {2: (2.7519, 0.61102), 3: (5.18678, 0.47559),
                             4: (8.28487, 0.40482), 5: (12.03698, 0.36052)}


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_constants_match_authors_tables(k):
    assert tinit.maxout_constant(k) == pytest.approx(AUTHORS_C[k], abs=2e-5)
    smallest, largest = maxout_chi2_order_moments(k)
    lo_ref = integrate.quad(lambda s: s * s * k * (2 - 2 * stats.norm.cdf(s)) ** (k - 1)
                            * 2 * stats.norm.pdf(s), 0, math.inf)[0]
    hi_ref = integrate.quad(lambda s: s * s * k * (2 * stats.norm.cdf(s) - 1) ** (k - 1)
                            * 2 * stats.norm.pdf(s), 0, math.inf)[0]
    assert (smallest, largest) == pytest.approx((lo_ref, hi_ref), rel=1e-6)
    assert (1 / smallest, 1 / largest) == pytest.approx(AUTHORS_RECIPROCAL_BOUNDS[k], rel=2e-5)


def _jacobian_moments(c, *, k, depths, width=16, runs=1500, seed=0):
    """Monte Carlo over ``runs`` inits of (n0 / n_out) ||J(x) u||^2 for u = x/|x| and for a
    random unit u, at each depth in ``depths`` (forward-mode JVP through the maxout stack,
    the readout's expectation taken exactly: E_w ||w v||^2 = n_out ||v||^2 / n)."""
    g = torch.Generator().manual_seed(seed)
    n = width
    x = torch.randn(runs, n, generator=g, dtype=torch.float64)
    u = torch.randn(runs, n, generator=g, dtype=torch.float64)
    u = u - (u * x).sum(1, keepdim=True) * x / x.pow(2).sum(1, keepdim=True)
    h, v_par, v_perp = x, x / x.norm(dim=1, keepdim=True), u / u.norm(dim=1, keepdim=True)
    scale = math.sqrt(c / tinit.maxout_constant(k))
    out = {}
    for depth in range(1, max(depths) + 1):
        w = tinit.maxout_normal_(torch.empty(runs * n * k, n, dtype=torch.float64), k,
                                 generator=g).view(runs, n * k, n) * scale
        z = torch.bmm(w, h.unsqueeze(2)).view(runs, n, k)
        idx = z.argmax(dim=2, keepdim=True)
        h = z.gather(2, idx).squeeze(2)
        v_par = torch.bmm(w, v_par.unsqueeze(2)).view(runs, n, k).gather(2, idx).squeeze(2)
        v_perp = torch.bmm(w, v_perp.unsqueeze(2)).view(runs, n, k).gather(2, idx).squeeze(2)
        if depth in depths:  # n0 / n_out * E||w v||^2 = n0 / n * ||v||^2 with n0 = n
            out[depth] = (v_par.pow(2).sum(1), v_perp.pow(2).sum(1), h, x)
    return out


@pytest.mark.parametrize("k", [2, 5])
def test_input_output_jacobian_moment_is_depth_stable_only_at_paper_constant(k):
    c_paper = tinit.maxout_constant(k)
    m = tinit.maxout_second_moment(k)
    for c, name, depths in [(c_paper, "paper", (2, 5, 10, 20, 30)), (2.0, "He", (2, 5, 10)),
                            (1.0, "LeCun", (2, 5, 10))]:
        res = _jacobian_moments(c, k=k, depths=depths)
        for depth, (par, perp, h, x) in res.items():
            # homogeneity: J(x) x = N-stack(x) exactly, so the aligned JVP is h / |x|
            torch.testing.assert_close(par, h.pow(2).sum(1) / x.pow(2).sum(1))
            exact = (c * m) ** depth  # (n0 / n_L) E||J x_hat||^2 from the paper's moments
            est = par.mean().item()
            se = par.std().item() / math.sqrt(par.numel())
            assert abs(est - exact) < 5 * se + 1e-3 * exact, (name, depth, est, exact)
            smallest, largest = maxout_chi2_order_moments(k)
            assert (c * smallest) ** depth * 0.9 < perp.mean().item() < (c * largest) ** depth
        means = [res[d][0].mean().item() for d in depths]
        stable = max(means) / min(means) < 1.5
        assert stable == (name == "paper" or (name == "LeCun" and k == 2)), (name, means)


def test_jvp_reference_matches_autograd_on_a_real_maxout_model():
    # The batched reference above agrees with trainlab's Maxout model and autograd.
    k, n, depth = 3, 6, 4
    model = build_model("maxout-mlp", (n,), 1, depth=depth, width=n, rank=k).double()
    tinit.apply(model, "maxout", generator=torch.Generator().manual_seed(3))
    x = torch.randn(n, dtype=torch.float64, requires_grad=True)
    y = model(x.unsqueeze(0)).squeeze()
    (grad,) = torch.autograd.grad(y, x)
    torch.testing.assert_close(grad @ x, y.detach())  # x . grad N(x) = N(x): homogeneity
