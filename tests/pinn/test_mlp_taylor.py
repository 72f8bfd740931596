"""The batched Taylor-mode residuals and Jacobians of trainlab.pinn.mlp_taylor and ENGD's
blocked Gram matrix: equal (float64, to 1e-12 of the largest entry) to the per-point
torch.func path (jet + vmap(jacrev)), to a row-by-row plain-autograd Jacobian and to
``J.T @ J``."""

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.optim.engd import gram_matrix
from trainlab.pinn import mlp_taylor
from trainlab.pinn.model import PinnModel
from trainlab.tasks import build_task


def _model(task, layers, seed=0, bias=True):
    torch.manual_seed(seed)
    mods, fan_in = [nn.Flatten()], task.input_shape[0]
    for width in layers:
        mods += [nn.Linear(fan_in, width, bias=bias), nn.Tanh()]
        fan_in = width
    mods.append(nn.Linear(fan_in, task.num_outputs, bias=bias))
    return task.build_network(nn.Sequential(*mods).double())


def _params(model):
    return {n: p.detach() for n, p in model.named_parameters()}


def _close(a, b, tol=1e-12):
    assert a.shape == b.shape
    a, b = a.detach(), b.detach()
    assert float((a - b).abs().max()) <= tol * float(b.abs().max())


def _generic(task, model):
    """The same network on the per-point torch.func path."""
    return PinnModel(model.net, task.problem, model.constraint, taylor=False)


@pytest.mark.parametrize("problem, kw, layers, bias", [
    ("pinn-burgers", {"n_interior": 40, "n_boundary": 10, "n_initial": 10}, (7, 5), True),
    ("pinn-heat", {"n_interior": 30, "n_boundary": 8, "n_initial": 8}, (6,), False),
    ("pinn-kovasznay", {"n_interior": 30, "n_boundary": 12}, (5, 4), True),  # 3 outputs
])
def test_taylor_path_equals_the_per_point_torch_func_path(problem, kw, layers, bias):
    task = build_task(problem, **kw)
    model = _model(task, layers, bias=bias)
    generic = _generic(task, model)
    assert model.taylor and not generic.taylor
    x = torch.cat([task.x_train, task.x_test[:7]])  # every term and solution rows (-1)
    with torch.no_grad():
        _close(model(x), generic(x))
    params = _params(model)
    _close(model.output_jacobian(x, params), generic.output_jacobian(x, params))
    # a subset of the parameters, in another order
    sub = dict(reversed([(n, p) for n, p in params.items() if "weight" in n]))
    _close(model.output_jacobian(x, sub), generic.output_jacobian(x, sub))
    # the residuals term_jacobian returns are the outputs; the forward is differentiable
    rows = task.x_train[:, -1] == 0
    r, _ = mlp_taylor.term_jacobian(model, 0, task.x_train[rows, :-1], params)
    _close(r, generic(task.x_train[rows]))
    grads = [torch.autograd.grad(m(x).pow(2).sum(), list(model.parameters()))
             for m in (model, generic)]
    for a, b in zip(*grads):
        _close(a, b)


def test_taylor_jacobian_equals_plain_autograd_row_by_row():
    task = build_task("pinn-burgers", n_interior=12, n_boundary=4, n_initial=4)
    model = _model(task, (5, 4), seed=3)
    out = _generic(task, model)(task.x_train)
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(o, list(model.parameters()),
                                                                  retain_graph=True)])
            for o in out[:, 0]]
    _close(model.output_jacobian(task.x_train, _params(model))[:, 0], torch.stack(rows))


def test_taylor_path_only_where_it_applies():
    task = build_task("pinn-poisson", constraint="hard", n_interior=10, grid_points=5)
    assert not _model(task, (4,)).taylor
    soft = build_task("pinn-poisson", n_interior=10, n_boundary=4, grid_points=5)
    sigmoid = soft.build_network(nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(),
                                               nn.Linear(3, 1)).double())
    assert not sigmoid.taylor
    assert _model(soft, (3,)).taylor


@pytest.mark.parametrize("blocks", [1, 3, 4, 7])
def test_gram_matrix_equals_the_full_product(blocks):
    jac = torch.randn(50, 23, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    gram = gram_matrix(jac, blocks, syrk=False)
    _close(gram, jac.T @ jac, 1e-14)
    assert torch.equal(gram, gram.T)
    with pytest.raises(ConfigError, match="blocks"):
        gram_matrix(jac, 0)


def test_streams_read_finds_the_derivatives_each_residual_reads(caplog):
    burgers = build_task("pinn-burgers", n_interior=4, n_boundary=2, n_initial=2).problem
    assert mlp_taylor.streams_read(burgers.term("pde"), 2, 1) == ((0, 1), ((1, 1),))
    assert mlp_taylor.streams_read(burgers.term("boundary"), 2, 1) == ((), ())
    poisson = build_task("pinn-poisson", n_interior=4, n_boundary=4, grid_points=3).problem
    assert mlp_taylor.streams_read(poisson.term("pde"), 2, 1) == ((0, 1), ((0, 0), (1, 1)))

    class Mixed:  # reads only u_xy: both first streams are still needed to carry it
        name, order = "mixed", 2

        @staticmethod
        def residual(j, x):
            return j.dd(1, 0) * x[:, :1]

    assert mlp_taylor.streams_read(Mixed, 3, 1) == ((0, 1), ((0, 1),))

    class Broken(Mixed):
        @staticmethod
        def residual(j, x):
            raise RuntimeError("not differentiable")

    with caplog.at_level("WARNING", logger="trainlab"):
        assert mlp_taylor.streams_read(Broken, 2, 1) == ((0, 1), ((0, 0), (0, 1), (1, 1)))
    assert "computing all of them" in caplog.text


@pytest.mark.parametrize("problem, kw", [
    ("pinn-burgers", {"n_interior": 40, "n_boundary": 10, "n_initial": 10}),
    ("pinn-kovasznay", {"n_interior": 30, "n_boundary": 12}),  # 3 outputs, Laplacians
])
def test_pruned_streams_equal_the_full_taylor_pass(problem, kw):
    """The old path (every stream, ``1 + d + d^2``) against the pruned one."""
    task = build_task(problem, **kw)
    model = _model(task, (7, 5))
    full = _model(task, (7, 5))
    d = len(task.problem.coords)
    every = ((tuple(range(d)), tuple((i, j) for i in range(d) for j in range(i, d))))
    full.__dict__["_taylor_streams"] = {i: every for i in range(len(full.terms))}
    x = torch.cat([task.x_train, task.x_test[:7]])
    with torch.no_grad():
        _close(model(x), full(x), 1e-14)
    _close(model.output_jacobian(x, _params(model)), full.output_jacobian(x, _params(full)),
           1e-13)
    assert len(model.__dict__["_taylor_streams"][0][1]) < len(every[1])


@pytest.mark.parametrize("taylor", [True, False])
def test_outputs_and_jacobian_give_the_forward_bit_for_bit(taylor):
    task = build_task("pinn-burgers", n_interior=30, n_boundary=6, n_initial=6)
    model = _model(task, (6, 5))
    model = model if taylor else _generic(task, model)
    x = torch.cat([task.x_train, task.x_test[:5]])
    out, jac = model.outputs_and_jacobian(x, _params(model))
    with torch.no_grad():
        assert torch.equal(out, model(x))
    assert torch.equal(jac, model.output_jacobian(x, _params(model)))
    # rows of a term not consecutive: the Jacobian is scattered, not written in place
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    out_p, jac_p = model.outputs_and_jacobian(x[perm], _params(model))
    _close(out_p, out[perm], 1e-14)
    _close(jac_p, jac[perm], 1e-13)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
def test_syrk_gram_equals_the_full_product(dtype, tol):
    from trainlab.optim._syrk import syrk_gram

    jac = torch.randn(300, 41, dtype=dtype, generator=torch.Generator().manual_seed(1))
    gram = syrk_gram(jac)
    if gram is None:  # no MKL, or outside the gate: gram_matrix uses the blocked product
        pytest.skip("no verified MKL ?syrk (no MKL, or torch outside SYRK_TORCH)")
    _close(gram, jac.T @ jac, tol)
    assert torch.equal(gram, gram.T)
    _close(syrk_gram(jac.T.contiguous().T), jac.T @ jac, tol)  # a non-contiguous input
    _close(gram_matrix(jac), gram_matrix(jac, syrk=False), tol)
    assert syrk_gram(jac.to(torch.int64)) is None
    assert syrk_gram(jac.requires_grad_(True)) is None  # autograd must see the product


def test_syrk_gram_outside_the_verified_torch_falls_back_with_a_warning(monkeypatch, caplog):
    import trainlab.optim._syrk as syrk

    monkeypatch.setattr(syrk, "_KERNELS", None)
    monkeypatch.setattr(syrk, "SYRK_TORCH", ((1, 0), (1, 0)))
    jac = torch.randn(50, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with caplog.at_level("WARNING", logger="trainlab"):
        assert syrk.syrk_gram(jac) is None
    assert "outside the verified releases" in caplog.text
    _close(gram_matrix(jac), jac.T @ jac, 1e-14)  # the blocked product serves instead
