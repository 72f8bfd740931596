"""PDE problems as trainlab tasks: the loss, per-term metrics, hard constraints, the Trainer."""

import logging
import math

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError, UnknownNameError
from trainlab.pinn.derivatives import Jet
from trainlab.pinn.model import PinnModel
from trainlab.pinn.problems import build_problem
from trainlab.store import RunStore
from trainlab.tasks import TASKS, build_task
from trainlab.train import RunConfig, Trainer

TINY = {"n_interior": 30, "n_boundary": 12, "grid_points": 11}


def _net(d, m=1, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, m)).double()


def test_loss_is_the_weighted_sum_of_term_means_and_residuals_match_it():
    task = build_task("pinn-poisson", weights="boundary=10", **TINY)
    model = task.build_network(_net(2))
    out = model(task.x_train)
    ids = task.y_train[:, 1]
    by_hand = 0.5 * (out[ids == 0].pow(2).mean() + 10 * out[ids == 1].pow(2).mean())
    torch.testing.assert_close(task.loss(out, task.y_train), by_hand)
    rho = task.residuals(out, task.y_train)
    torch.testing.assert_close(0.5 * rho.pow(2).sum(), by_hand)
    m = task.metrics(out, task.y_train)
    torch.testing.assert_close(m["mse_boundary"], out[ids == 1].pow(2).mean())
    # the residual rows are the PDE: -lap u - f at interior points
    x = task.x_train[ids == 0, :2].clone().requires_grad_(True)
    u = model.net(x).sum()
    (g,) = torch.autograd.grad(u, x, create_graph=True)
    lap = sum(torch.autograd.grad(g[:, i].sum(), x, retain_graph=True)[0][:, i]
              for i in range(2))
    f = 2 * math.pi ** 2 * torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1])
    torch.testing.assert_close(out[ids == 0, 0], (-lap - f).detach())


def test_test_set_metrics_measure_the_error_against_the_reference():
    task = build_task("pinn-poisson", **TINY)
    exact = task.y_test[:, :1]
    m = task.metrics(exact * 1.01, task.y_test)  # a 1% error everywhere
    assert m["rel_l2"].item() == pytest.approx(0.01, rel=1e-10)
    assert m["max_error"].item() == pytest.approx(0.01 * exact.abs().max().item(), rel=1e-10)


@pytest.mark.parametrize("name, params", [
    ("poisson", TINY), ("burgers", {"n_interior": 20, "n_boundary": 5, "n_initial": 5,
                                    "grid_x": 8, "grid_t": 3}),
    ("heat", {"n_interior": 20, "grid_points": 5}), ("oscillator", {"n_interior": 10}),
    ("advection", {"c": 30.0, "n_interior": 20, "grid_x": 8, "grid_t": 3}),
    ("kovasznay", {"n_interior": 20, "n_boundary": 20, "grid_points": 5}),
    ("allen-cahn", {"modes": 32, "dt": 1e-3, "n_interior": 20, "grid_x": 8, "grid_t": 3})])
def test_hard_constraints_hold_exactly(name, params):
    p = build_problem(name, **params)
    model = PinnModel(_net(p.network_inputs, p.outputs), p, "hard")
    assert [t.name for t in model.terms] == ["pde"]
    g = torch.Generator().manual_seed(0)
    for term in p.terms[1:]:
        x = term.sample(50, g)
        r = term.residual(Jet(model.solution(x)), x)
        assert r.abs().max() < 1e-14, (name, term.name)


def test_trainer_runs_a_pde_task_and_records_terms_and_error(tmp_path, caplog):
    cfg = RunConfig(task="pinn-poisson", task_params=TINY, model="mlp",
                    model_params={"width": 8, "activation": "tanh"}, optim="adam", lr=1e-2,
                    schedule="constant", schedule_params={}, steps=4, batch_size=0,
                    probes="eval,grad-norm,sharpness", every=2, dtype="float32")
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        result = Trainer(cfg, store=RunStore(tmp_path), report=False).run()
    assert result.status == "completed"
    assert "float64" in caplog.text
    for key in ("final_train_mse_pde", "final_train_mse_boundary", "final_test_rel_l2",
                "final_test_nrmse", "final_test_frmse_low"):
        assert math.isfinite(result.summary[key]), key


def test_bad_input_is_rejected_in_one_line():
    with pytest.raises(ConfigError, match="smooth activation"):
        PinnModel(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)),
                  build_problem("poisson"))
    with pytest.raises(UnknownNameError, match="boundary"):
        build_task("pinn-poisson", weights={"initial": 2.0}, **TINY)
    with pytest.raises(ConfigError, match="'constraint'.*'soft', 'hard'"):
        build_task("pinn-poisson", constraint="exact", **TINY)
    with pytest.raises(ConfigError, match="n_boundary"):
        build_task("pinn-poisson", n_interior=4, n_boundary=0)
    assert "pinn-burgers" in TASKS and TASKS.entry("pinn-oscillator").papers == (13,)
    from trainlab.registry import entries_for_paper

    assert {e.name for e in entries_for_paper(80)} >= {"pdebench-metrics", "pdebench-reader"}


def test_kovasznay_hard_transform_is_not_the_solution_inside():
    from trainlab.pinn.problems.kovasznay import coons_patch

    p = build_problem("kovasznay", grid_points=5)
    x = p.grid
    inside = (x[:, 0] > -0.5) & (x[:, 0] < 1) & (x[:, 1] > -0.5) & (x[:, 1] < 1.5)
    g = coons_patch(p.reference, p.lower, p.upper, x)
    torch.testing.assert_close(g[~inside], p.reference(x)[~inside])
    assert (g[inside] - p.reference(x)[inside]).abs().max() > 1e-2
