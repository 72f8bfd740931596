"""ENGD: its step against a dense damped least-squares solve, its errors, and a small PDE
trained to a stated error."""

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.optim import OPTIMIZERS, build_optimizer
from trainlab.optim.loss_closure import make_closure
from trainlab.tasks import build_task


def _model(task, width=6, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 1)).double()
    return task.build_network(net)


def _dense_jacobian(model, task):
    """Row by row with plain autograd (no torch.func): the Jacobian of the residual vector."""
    params = list(model.parameters())
    rho = task.residuals(model(task.x_train), task.y_train).reshape(-1)
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(r, params,
                                                                  retain_graph=True)])
            for r in rho]
    return rho.detach(), torch.stack(rows)


def test_step_equals_a_dense_damped_least_squares_solve():
    task = build_task("pinn-poisson", n_interior=20, n_boundary=8, grid_points=5)
    model = _model(task)
    rho, jac = _dense_jacobian(model, task)
    before = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    damping = 1e-3
    mu = damping * (jac ** 2).sum() / jac.shape[1]
    stacked = torch.cat([jac, mu.sqrt() * torch.eye(jac.shape[1], dtype=jac.dtype)])
    rhs = torch.cat([rho, torch.zeros(jac.shape[1], dtype=jac.dtype)])
    d = torch.linalg.lstsq(stacked, rhs[:, None], driver="gelsd").solution[:, 0]
    opt = build_optimizer("engd", model.parameters(), lr=1.0, damping=damping,
                          line_search_steps=1, adaptive=False)
    loss = opt.step(make_closure(model, task.loss, task.x_train, task.y_train))
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(after, before - d, rtol=1e-7, atol=1e-9)
    assert loss.item() == pytest.approx(0.5 * (rho @ rho).item(), rel=1e-12)
    # the pre-step gradient J^T rho is written back
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(grad, jac.T @ rho)


def test_line_search_picks_the_best_grid_point_and_the_state_says_so():
    task = build_task("pinn-poisson", n_interior=20, n_boundary=8, grid_points=5)
    model = _model(task, seed=1)
    closure = make_closure(model, task.loss, task.x_train, task.y_train)
    opt = build_optimizer("engd", model.parameters(), lr=1.0, exhaustive=True, adaptive=False,
                          damping=1e-6)
    before = [p.detach().clone() for p in model.parameters()]
    first = opt.step(closure)
    state = opt.state[next(model.parameters())]
    with torch.no_grad():
        after = task.loss(model(task.x_train), task.y_train)
    assert after < first and 0 < state["eta"] <= 1.0 and state["step"] == 1
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))


def test_trains_a_small_poisson_problem_to_a_stated_error():
    task = build_task("pinn-poisson", n_interior=100, n_boundary=40, grid_points=21,
                      sampling="grid")
    model = _model(task, width=16)
    opt = build_optimizer("engd", model.parameters(), lr=1.0)
    closure = make_closure(model, task.loss, task.x_train, task.y_train)
    for _ in range(35):  # measured: 1.6e-4 after 30 steps, 4.7e-5 after 40
        opt.step(closure)
    with torch.no_grad():
        err = task.metrics(model(task.x_test), task.y_test)["rel_l2"].item()
    assert err < 1e-3, err


def test_errors_are_clear():
    task = build_task("modular-addition", p=5)
    model = nn.Sequential(nn.Linear(10, 5)).double()
    opt = build_optimizer("engd", model.parameters(), lr=1.0)
    x, y = task.x_train.double(), task.y_train
    with pytest.raises(ConfigError, match="least squares"):
        opt.step(make_closure(model, task.loss, x, y))
    with pytest.raises(ConfigError, match="make_closure"):
        opt.step(lambda: torch.zeros(()))
    with pytest.raises(ConfigError, match="closure"):
        opt.step()
    with pytest.raises(ConfigError, match="'damping'"):
        build_optimizer("engd", model.parameters(), lr=1.0, damping=0.0)
    w, b = model[0].weight, model[0].bias
    with pytest.raises(ConfigError, match="'damping' must be the same"):
        build_optimizer("engd", [{"params": [w]}, {"params": [b], "damping": 1e-3}], lr=1.0)
    assert OPTIMIZERS.entry("engd").flags["needs_closure"]


def test_engd_pde_run_in_the_trainer_resumes_bitwise(tmp_path):
    import numpy as np

    from trainlab.store import RunStore
    from trainlab.train import RunConfig, Trainer

    cfg = RunConfig(task="pinn-poisson", task_params={"n_interior": 25, "n_boundary": 12,
                                                      "grid_points": 5},
                    model="mlp", model_params={"width": 6, "depth": 1, "activation": "tanh"},
                    optim="engd", lr=1.0, schedule="constant", schedule_params={}, steps=6,
                    batch_size=0, probes="eval", every=3, dtype="float64",
                    checkpoint_every=6)
    store = RunStore(tmp_path)
    full = Trainer(cfg, store=store, report=False).run()
    part = Trainer(cfg, store=store, report=False).run(stop_at=3)
    Trainer.resume(part.run_id, store=store, report=False).run()
    a, b = store.metrics(full.run_id), store.metrics(part.run_id)
    assert set(a) >= {"loss", "test/rel_l2", "train/mse_pde"}
    assert all(np.array_equal(a[k][1], b[k][1]) for k in a)
    assert a["loss"][1][-1] < a["loss"][1][0]


@pytest.mark.parametrize("exhaustive", [True, False])
def test_line_search_equals_a_brute_force_search_over_the_grid(exhaustive):
    # the paper's search (exhaustive): the loss at every grid point lr * 2^-k along the dense
    # damped Gauss-Newton direction, the step the argmin; the default stops at the first grid
    # point past a decrease whose loss rises again (the first local minimum along the grid)
    task = build_task("pinn-poisson", n_interior=20, n_boundary=8, grid_points=5)
    model = _model(task, seed=2)
    rho, jac = _dense_jacobian(model, task)
    before = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    damping, lr, k = 1e-6, 2.0, 31
    gram = jac.T @ jac
    mu = damping * torch.diagonal(gram).sum() / gram.shape[0]
    d = torch.linalg.solve(gram + mu * torch.eye(len(gram), dtype=gram.dtype), jac.T @ rho)
    sizes = [p.numel() for p in model.parameters()]

    def loss_at(theta):
        with torch.no_grad():
            for p, v in zip(model.parameters(), torch.split(theta, sizes)):
                p.copy_(v.view_as(p))
            return task.loss(model(task.x_train), task.y_train).item()

    etas = [lr * 0.5 ** i for i in range(k)]
    losses = [loss_at(before - eta * d) for eta in etas]
    loss_at(before)
    if exhaustive:
        pick = min(range(k), key=losses.__getitem__)
    else:
        pick = next(i for i in range(1, k) if losses[i] >= min(losses[:i])
                    and min(losses[:i]) < 0.5 * (rho @ rho).item()) - 1
        pick = min(range(pick + 1), key=losses.__getitem__)
    opt = build_optimizer("engd", model.parameters(), lr=lr, damping=damping,
                          line_search_steps=k, adaptive=False, exhaustive=exhaustive)
    opt.step(make_closure(model, task.loss, task.x_train, task.y_train))
    assert opt.state[next(model.parameters())]["eta"] == etas[pick]
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(after, before - etas[pick] * d, rtol=1e-7, atol=1e-9)
    assert losses[pick] < 0.5 * (rho @ rho).item()


def test_make_closure_path_skips_the_closure_and_keeps_the_trajectory_and_gradient():
    """With make_closure's closure ENGD takes the loss and the gradient (J^T rho) from the
    least-squares system instead of calling the closure: the same iterates bit for bit as a
    closure it must call (a LossClosure subclass), the same returned loss, and p.grad equal
    to the closure's gradient at the pre-step weights to rounding."""
    from trainlab.optim.loss_closure import LossClosure

    class Called(LossClosure):
        calls = 0

        def __call__(self):
            Called.calls += 1
            return super().__call__()

    task = build_task("pinn-burgers", n_interior=40, n_boundary=8, n_initial=8)
    runs = []
    for kind in (make_closure, Called):
        model = _model(task, width=8)
        opt = build_optimizer("engd", model.parameters(), lr=1.0)
        closure = kind(model, task.loss, task.x_train, task.y_train)
        losses, grads = [], []
        for _ in range(3):
            before = make_closure(model, task.loss, task.x_train, task.y_train)
            expected = before()
            want = [p.grad.clone() for p in model.parameters()]
            losses.append(float(opt.step(closure)))
            assert losses[-1] == float(expected)
            for p, g in zip(model.parameters(), want):
                assert float((p.grad - g).abs().max()) <= 1e-12 * float(g.abs().max())
            grads.append([p.grad.clone() for p in model.parameters()])
        runs.append(([p.detach().clone() for p in model.parameters()], losses))
    assert Called.calls == 3
    assert runs[0][1] == runs[1][1]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[1][0]))
