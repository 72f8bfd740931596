"""The Gram-condition probe (row 40) against a closed form and on the Poisson ladder."""

import torch
from torch import nn

from trainlab.probes import PROBES, ProbeContext
from trainlab.tasks import build_task


def _measure(model, loss_fn, x, y):
    ctx = ProbeContext(step=0, model=model, loss_fn=loss_fn, batch=(x, y),
                       generator=torch.Generator().manual_seed(0))
    return PROBES.get("gram-condition")().measure(ctx)


def test_linear_least_squares_gram_is_x_transpose_x_over_n():
    task = build_task("teacher-linear", in_dim=4, out_dim=1, singular_values="1",
                      n_train=32, n_test=4, whiten=False).to(torch.float64)
    x = task.x_train * torch.tensor([1.0, 2.0, 3.0, 10.0], dtype=torch.float64)
    model = nn.Linear(4, 1, bias=False).double()
    out = _measure(model, task.loss, x, task.y_train)
    eig = torch.linalg.eigvalsh(x.T @ x / len(x))
    torch.testing.assert_close(out["gram/condition"], eig[-1] / eig[0])
    torch.testing.assert_close(out["gram/lambda_max"], eig[-1])
    assert out["gram/rank"] == 4.0


def test_gram_does_not_depend_on_the_forcing_and_classification_returns_nothing():
    conds = []
    for k in (1, 4):
        task = build_task("pinn-poisson", k=k, n_interior=64, n_boundary=32, grid_points=5)
        torch.manual_seed(0)
        model = task.build_network(nn.Sequential(nn.Linear(2, 6), nn.Tanh(),
                                                 nn.Linear(6, 1)).double())
        out = _measure(model, task.loss, task.x_train, task.y_train)
        conds.append(float(out["gram/condition"]))
    assert conds[1] == conds[0] and conds[0] > 1e3  # linear PDE: J is independent of f
    clf = build_task("modular-addition", p=5)
    assert _measure(nn.Linear(10, 5), clf.loss, clf.x_train, clf.y_train) == {}
