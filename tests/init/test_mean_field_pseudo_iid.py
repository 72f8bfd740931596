"""Edge-of-chaos solver and pseudo-IID weights (Nait Saada et al. 2024, papers.md row 111)."""

import math

import pytest
import torch
from scipy import integrate, stats

import trainlab.init as tinit
from trainlab.init import mean_field as mf
from trainlab.init.pseudo_iid import block_mask
from trainlab.models import build_model


def test_relu_is_critical_at_two():
    assert mf.critical_sigma_w2("relu") == pytest.approx(2.0, abs=1e-8)
    assert mf.critical_sigma_w2("relu", 0.1) == pytest.approx(2.0, abs=1e-8)


@pytest.mark.parametrize(("sb2", "sw2", "q"), [(0.0, 1.0, 0.0), (0.01, 1.424, 0.273),
                                                (0.05, 1.761, 0.570), (0.1, 1.986, 0.806),
                                                (0.3, 2.505, 1.461)])
def test_tanh_critical_curve(sb2, sw2, q):
    s = mf.critical_sigma_w2("tanh", sb2)
    assert s == pytest.approx(sw2, abs=2e-3)
    assert mf.q_fixed_point("tanh", s, sb2) == pytest.approx(q, abs=2e-3)


def _quad_qmap(q, s2, b2):
    f = lambda z: stats.norm.pdf(z) * math.tanh(math.sqrt(q) * z) ** 2  # noqa: E731
    return s2 * integrate.quad(f, -12, 12)[0] + b2


def test_chi1_and_fixed_point_against_scipy_quad():
    s2, b2 = 1.5, 0.05
    point = mf.mean_field_point("tanh", s2, b2)
    assert _quad_qmap(point.q_star, s2, b2) == pytest.approx(point.q_star, rel=1e-8)
    dphi2 = lambda z: stats.norm.pdf(z) / math.cosh(math.sqrt(point.q_star) * z) ** 4  # noqa: E731
    assert point.chi1 == pytest.approx(s2 * integrate.quad(dphi2, -12, 12)[0], rel=1e-8)
    assert point.phase == "ordered"
    assert mf.mean_field_point("tanh", 3.0, b2).phase == "chaotic"


STRUCTURES = ["iid", "orthogonal", "low-rank", "sparse"]


@pytest.mark.parametrize("structure", STRUCTURES)
def test_pseudo_iid_conditions_by_monte_carlo(structure):
    # Definition 1's second-order conditions, entry by entry over 4000 draws of a 6 x 8 matrix:
    # E W_ij = 0, E W_ij^2 = sigma^2 / n for every (i, j) (so every row and column has the same
    # second moment), E W_ij W_kl = 0 for every other pair; each within a CLT bound.
    m, n, s2, draws = 6, 8, 1.7, 4000
    g = torch.Generator().manual_seed(0)
    w = torch.stack([tinit.pseudo_iid_(torch.empty(m, n, dtype=torch.float64), s2, structure,
                                       rank_fraction=0.5, density=0.5, generator=g)
                     for _ in range(draws)]).view(draws, m * n)
    exact = s2 / n
    se_mean = w.std(0) / math.sqrt(draws)
    assert (w.mean(0).abs() < 5 * se_mean).all()
    sq = w.pow(2)
    assert ((sq.mean(0) - exact).abs() < 5 * sq.std(0) / math.sqrt(draws)).all()
    cov = w.T @ w / draws
    prod_sd = (w.unsqueeze(2) * w.unsqueeze(1)).std(0) / math.sqrt(draws)
    off = ~torch.eye(m * n, dtype=torch.bool)
    assert ((cov[off]).abs() < 5 * prod_sd[off] + 1e-12).all()
    # rows and columns: mean second moment sigma^2 / n
    per_entry = sq.mean(0).view(m, n)
    torch.testing.assert_close(per_entry.mean(1), torch.full((m,), exact, dtype=torch.float64),
                               rtol=0.06, atol=0)
    torch.testing.assert_close(per_entry.mean(0), torch.full((n,), exact, dtype=torch.float64),
                               rtol=0.06, atol=0)


def test_low_rank_is_orthonormal_basis_times_iid_and_has_rank_r():
    w = tinit.pseudo_iid_(torch.empty(40, 30, dtype=torch.float64), 2.0, "low-rank",
                          rank_fraction=0.25, generator=torch.Generator().manual_seed(1))
    assert torch.linalg.matrix_rank(w) == 8  # ceil(0.25 * 30)
    assert w.pow(2).mean().item() == pytest.approx(2.0 / 30, rel=0.15)


def test_sparse_support_is_a_permuted_block_diagonal():
    m, n, density = 12, 20, 0.25
    w = tinit.pseudo_iid_(torch.empty(m, n, dtype=torch.float64), 1.0, "sparse", density=density,
                          generator=torch.Generator().manual_seed(2))
    supports = {tuple((w[i] != 0).nonzero().flatten().tolist()) for i in range(m)}
    assert len(supports) == 4  # round(1 / density) blocks
    cols = sorted(c for sup in supports for c in sup)
    assert cols == list(range(n))  # disjoint column groups covering every input
    row_groups = sorted(sum(1 for i in range(m) if tuple((w[i] != 0).nonzero().flatten().tolist())
                            == sup) for sup in supports)
    assert row_groups == [3, 3, 3, 3] and sorted(len(sup) for sup in supports) == [5, 5, 5, 5]
    assert not torch.equal(w != 0, block_mask(m, n, 4).bool())  # rows/columns permuted


@pytest.mark.parametrize("structure", STRUCTURES)
def test_preactivation_variance_stays_at_q_star_through_depth(structure):
    # At the edge of chaos with input length set so layer 1 starts at q*, every later layer's
    # mean squared preactivation stays at q* (the GP limit of Pseudo-IID nets = the iid one).
    width, depth, b2, inits = 400, 20, 0.05, 6
    point = mf.mean_field_point("tanh", mf.critical_sigma_w2("tanh", b2), b2)
    runs = []
    for seed in range(inits):
        model = build_model("mlp", (width,), width, depth=depth, width=width,
                            activation="tanh").double()
        tinit.apply(model, "edge-of-chaos", generator=torch.Generator().manual_seed(seed),
                    activation="tanh", sigma_b2=b2, structure=structure)
        x = torch.randn(32, width, generator=torch.Generator().manual_seed(100 + seed),
                        dtype=torch.float64)
        x = x / x.pow(2).mean(1, keepdim=True).sqrt()
        x = x * math.sqrt((point.q_star - b2) / point.sigma_w2)
        h, qs = x, []
        for layer in list(model)[1:-1]:
            h = layer(h)
            if isinstance(layer, torch.nn.Linear):
                qs.append(h.pow(2).mean().item())
        runs.append(qs)
    q = torch.tensor(runs, dtype=torch.float64) / point.q_star  # (inits, depth)
    assert q.shape == (inits, depth)
    se = q.std(0) / math.sqrt(inits)
    assert ((q.mean(0) - 1).abs() < 4 * se + 0.02).all(), q.mean(0)
    assert abs(q.mean().item() - 1) < 0.03
    assert (q - 1).abs().max().item() < 0.3  # no run drifts away from q*


def test_first_layer_is_iid_as_the_theorem_assumes():
    model = build_model("mlp", (30,), 30, depth=2, width=30, activation="tanh").double()
    tinit.apply(model, "edge-of-chaos", generator=torch.Generator().manual_seed(0),
                structure="low-rank")
    linears = [mod for mod in model.modules() if isinstance(mod, torch.nn.Linear)]
    assert torch.linalg.matrix_rank(linears[0].weight) == 30
    assert torch.linalg.matrix_rank(linears[1].weight) == 8


@pytest.mark.parametrize("structure", ["iid", "orthogonal", "low-rank", "sparse"])
def test_deep_tanh_net_follows_the_mean_field_length_map(structure):
    width, depth, b2 = 600, 6, 0.05
    s2 = mf.critical_sigma_w2("tanh", b2)
    model = build_model("mlp", (width,), width, depth=depth, width=width,
                        activation="tanh").double()
    tinit.apply(model, "edge-of-chaos", generator=torch.Generator().manual_seed(0),
                activation="tanh", sigma_b2=b2, structure=structure)
    x = torch.randn(32, width, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    q = None
    h = x
    for layer in list(model)[1:-1]:
        h = layer(h)
        if isinstance(layer, torch.nn.Linear):
            q = s2 * 1.0 + b2 if q is None else _quad_qmap(q, s2, b2)  # input: E x^2 = 1
            # finite-size fluctuations scale like 1/sqrt(rank) for low-rank weights (r = 150)
            tol = 0.12 if structure == "low-rank" else 0.08
            assert h.pow(2).mean().item() == pytest.approx(q, rel=tol)


def test_same_generator_same_tensor():
    for structure in ["iid", "orthogonal", "low-rank", "sparse"]:
        a = tinit.pseudo_iid_(torch.empty(6, 9), 1.0, structure,
                              generator=torch.Generator().manual_seed(2))
        b = tinit.pseudo_iid_(torch.empty(6, 9), 1.0, structure,
                              generator=torch.Generator().manual_seed(2))
        assert torch.equal(a, b)
