"""Hard constraints per expert (papers.md row 93): each expert's coefficients are the dense
damped least-squares solution of its constraints, the constraints hold when the basis is
rich enough, the gradient through the solve matches finite differences, training lowers the
error, and bad input gets one-line errors."""

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.optim.procedures import PROCEDURES
from trainlab.pinn.chalapathi2024_moe_hard import HardConstraintExperts
from trainlab.pinn.model import PinnModel
from trainlab.pinn.problems import build_problem
from trainlab.tasks import build_task

from ._autograd_reference import values_and_laplacians


def _basis(n, seed=0, hidden=8):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, n),
                         nn.Tanh()).double()


def test_each_expert_solves_its_own_dense_least_squares_problem():
    p = build_problem("poisson", k=1)
    moe = HardConstraintExperts(_basis(6), p, experts=3, axis=1, points=30, damping=1e-3,
                                generator=torch.Generator().manual_seed(2))
    omega = moe.coefficients().detach()
    w = torch.pi
    for k, pts in enumerate(moe.constraints):
        xi, xb = pts["pde"], pts["boundary"]
        assert ((xi[:, 1] >= moe.edges[k]) & (xi[:, 1] <= moe.edges[k + 1])).all()
        _, lap = values_and_laplacians(moe.basis, xi)
        f = 2 * w ** 2 * torch.sin(w * xi[:, 0]) * torch.sin(w * xi[:, 1])
        a = torch.cat([-lap, moe.basis(xb).detach()])  # -Lap u = f, u = 0 on the boundary
        rhs = torch.cat([f, torch.zeros(len(xb), dtype=f.dtype)])
        mu = 1e-3 * (a ** 2).sum() / a.shape[1]
        expected = torch.linalg.solve(a.T @ a + mu * torch.eye(a.shape[1], dtype=a.dtype),
                                      a.T @ rhs)
        torch.testing.assert_close(omega[k], expected, rtol=1e-8, atol=1e-10)
    x = torch.tensor([[0.3, 0.1], [0.3, 0.9]], dtype=torch.float64)
    assert moe.expert_of(x).tolist() == [0, 2]
    assert PROCEDURES.entry("hard-constraint-experts").papers == (93,)


def test_condition_points_are_shared_by_every_expert_as_in_the_papers_code():
    """The paper's diffusion-sorption code gives every expert the global initial and boundary
    terms; its PDE points are split by subdomain. ``share_conditions=False`` splits all."""
    p = build_problem("heat")
    kw = dict(experts=4, axis=1, points=40)
    shared = HardConstraintExperts(_basis(6), p, generator=torch.Generator().manual_seed(0),
                                   **kw)
    split = HardConstraintExperts(_basis(6), p, share_conditions=False,
                                  generator=torch.Generator().manual_seed(0), **kw)
    for name in ("boundary", "initial"):
        for k in range(4):
            assert torch.equal(shared.constraints[k][name], shared.constraints[0][name])
            assert len(shared.constraints[k][name]) == 40
        assert sum(len(c[name]) for c in split.constraints) == 40
        assert all((split.expert_of(c[name]) == k).all()
                   for k, c in enumerate(split.constraints))
    for a, b in zip(shared.constraints, split.constraints):
        assert torch.equal(a["pde"], b["pde"])
    assert sum(len(c["pde"]) for c in shared.constraints) == 40


def test_constraints_hold_when_the_basis_outnumbers_them_and_the_gradient_is_the_solves():
    p = build_problem("heat")
    moe = HardConstraintExperts(_basis(40, hidden=40), p, experts=2, axis=1, points=12,
                                damping=1e-13, generator=torch.Generator().manual_seed(0))
    for k in range(2):
        a, f = moe.system(k)
        assert a.shape[0] < a.shape[1]
        res = a.detach() @ moe.coefficients()[k].detach() - f.detach()
        # hard up to the damping and the basis's conditioning (measured 3e-5; the random
        # basis's singular values span 16 orders); the untrained soft residual is O(1)
        assert float(res.norm() / f.norm()) < 1e-3
    # gradient of a functional of the coefficients w.r.t. the basis's first-layer bias,
    # through the solve, against central finite differences
    small = HardConstraintExperts(_basis(5, seed=3, hidden=4), p, experts=2, points=10,
                                  damping=1e-2, generator=torch.Generator().manual_seed(1))
    bias = small.basis[0].bias
    x = torch.rand(7, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    value = small(x).pow(2).sum()
    (grad,) = torch.autograd.grad(value, bias)
    h = 1e-6
    for i in range(bias.numel()):
        with torch.no_grad():
            bias[i] += h
            up = small(x).pow(2).sum()
            bias[i] -= 2 * h
            down = small(x).pow(2).sum()
            bias[i] += h
        assert grad[i].item() == pytest.approx(((up - down) / (2 * h)).item(), rel=1e-5,
                                               abs=1e-8)


def test_training_the_basis_on_the_pinn_loss_lowers_the_error():
    task = build_task("pinn-poisson", k=1, n_interior=120, n_boundary=40, grid_points=21)
    moe = HardConstraintExperts(_basis(24, hidden=24), task.problem, experts=2, points=40,
                                damping=1e-6, generator=torch.Generator().manual_seed(1))
    model = PinnModel(moe, task.problem)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def error():
        with torch.no_grad():
            return float(task.metrics(model(task.x_test), task.y_test)["rel_l2"])

    before = error()
    for _ in range(15):
        opt.zero_grad()
        task.loss(model(task.x_train), task.y_train).backward()
        opt.step()
    assert error() < 0.8 * before


def test_bad_input_gets_one_line_errors():
    basis = _basis(4)
    with pytest.raises(ConfigError, match="linear problem.*'pde'.*'burgers'") as err:
        HardConstraintExperts(basis, build_problem("burgers", grid_x=8, grid_t=3))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="periodic"):
        HardConstraintExperts(basis, build_problem("heat-2d", grid_x=4, grid_t=2))
    with pytest.raises(ConfigError, match="'experts' parameter"):
        HardConstraintExperts(basis, build_problem("poisson"), experts=0)
    with pytest.raises(ConfigError, match="expert .* has no 'pde' constraint points"):
        HardConstraintExperts(basis, build_problem("poisson"), experts=50, points=3)
