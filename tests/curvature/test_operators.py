"""Curvature operators against dense float64 references built from their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch
from curvature_reference import (
    DT,
    OwnLoss,
    TinyAttention,
    classification_batch,
    dense_empirical_fisher,
    dense_ggn,
    dense_hessian,
    flat_params,
    mlp,
    regression_batch,
    split,
)
from torch import nn
from torch.func import functional_call, hessian

from trainlab.curvature import (
    EmpiricalFisherOperator,
    GGNOperator,
    HessianOperator,
    lanczos,
    make_hvp,
)
from trainlab.errors import ConfigError

CASES = {
    "ce": (nn.CrossEntropyLoss(), classification_batch),
    "mse": (nn.MSELoss(), regression_batch),
}
OPERATORS = {
    "hessian": (HessianOperator, dense_hessian),
    "ggn": (GGNOperator, dense_ggn),
    "ef": (EmpiricalFisherOperator, dense_empirical_fisher),
}


def identity(dim: int) -> torch.Tensor:
    return torch.eye(dim, dtype=DT)


@pytest.mark.parametrize("loss", CASES)
@pytest.mark.parametrize("kind", OPERATORS)
def test_operator_matches_dense_definition(kind, loss):
    loss_fn, make_batch = CASES[loss]
    model, (x, y) = mlp(), make_batch()
    cls, reference = OPERATORS[kind]
    op = cls(model, loss_fn, (x, y))
    dense = reference(model, loss_fn, x, y)
    assert torch.allclose(op.matmat(identity(op.dim)), dense, rtol=1e-10, atol=1e-12)
    v = torch.randn(op.dim, generator=torch.Generator().manual_seed(5), dtype=DT)
    assert torch.allclose(op @ v, dense @ v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", OPERATORS)
def test_matmat_equals_stacked_matvecs(kind):
    model, (x, y) = mlp(), classification_batch()
    op = OPERATORS[kind][0](model, nn.CrossEntropyLoss(), (x, y))
    mat = torch.randn(op.dim, 4, generator=torch.Generator().manual_seed(0), dtype=DT)
    stacked = torch.stack([op.matvec(mat[:, i]) for i in range(4)], dim=1)
    assert torch.allclose(op.matmat(mat), stacked, rtol=1e-12, atol=1e-14)
    assert torch.allclose(op.matmat(mat, chunk_size=3), stacked, rtol=1e-12, atol=1e-14)


def test_ggn_equals_hessian_for_linear_model_and_mse():
    """Zero second derivative of the model: the GGN is the Hessian."""
    model, (x, y) = mlp(sizes=(5, 3)), regression_batch()
    h = HessianOperator(model, nn.MSELoss(), (x, y)).matmat(identity(18))
    g = GGNOperator(model, nn.MSELoss(), (x, y)).matmat(identity(18))
    assert torch.allclose(h, g, rtol=1e-12, atol=1e-14)


def test_several_batches_average_weighted_by_size():
    model, (x, y) = mlp(), classification_batch(n=12)
    loss_fn = nn.CrossEntropyLoss()
    op = HessianOperator(model, loss_fn, [(x[:4], y[:4]), (x[4:], y[4:])])
    full = dense_hessian(model, loss_fn, x, y)  # mean loss over all 12 samples
    assert torch.allclose(op.matmat(identity(op.dim)), full, rtol=1e-10, atol=1e-12)


def test_float64_option_on_a_float32_model():
    model = mlp().float()
    x, y = classification_batch()
    op = HessianOperator(model, nn.CrossEntropyLoss(), (x.float(), y), dtype=torch.float64)
    assert op.dtype == torch.float64
    assert next(model.parameters()).dtype == torch.float32  # model untouched
    dense = dense_hessian(model.double(), nn.CrossEntropyLoss(), x, y)
    assert torch.allclose(op.matmat(identity(op.dim)), dense, rtol=1e-6, atol=1e-8)


def test_blocks_are_the_diagonal_blocks_of_the_dense_matrix():
    model, (x, y) = mlp(), classification_batch()
    op = HessianOperator(model, nn.CrossEntropyLoss(), (x, y))
    dense = dense_hessian(model, nn.CrossEntropyLoss(), x, y)
    blocks = op.blocks()
    assert list(blocks) == ["0", "2"]  # per layer
    start = 0
    for name, block in blocks.items():
        sub = block.matmat(identity(block.dim))
        ref = dense[start:start + block.dim, start:start + block.dim]
        assert torch.allclose(sub, ref, rtol=1e-10, atol=1e-12), name
        start += block.dim
    assert start == op.dim
    weight = op.restrict(["2.weight"])
    assert weight.dim == 21


def test_layernorm_attention_model_matches_dense():
    torch.manual_seed(0)
    model = TinyAttention().to(DT)
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 3, 4, generator=g, dtype=DT), torch.randint(0, 2, (6,), generator=g)
    loss_fn = nn.CrossEntropyLoss()
    for cls, ref in [(HessianOperator, dense_hessian), (GGNOperator, dense_ggn)]:
        op = cls(model, loss_fn, (x, y))
        assert torch.allclose(op.matmat(identity(op.dim)), ref(model, loss_fn, x, y),
                              rtol=1e-9, atol=1e-11)


def test_model_that_computes_its_own_loss():
    model = OwnLoss().to(DT)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, generator=g, dtype=DT), torch.randn(8, 2, generator=g, dtype=DT)
    op = HessianOperator(model, None, ((x, y), None))

    def f(flat):
        return functional_call(model, split(model, flat), (x, y))

    dense = hessian(f)(flat_params(model))
    assert torch.allclose(op.matmat(identity(op.dim)), dense, rtol=1e-10, atol=1e-12)
    with pytest.raises(ConfigError, match="loss_fn"):
        GGNOperator(model, None, ((x, y), None))


def _snapshot(model: nn.Module):
    return ([p.detach().clone() for p in model.parameters()],
            [None if p.grad is None else p.grad.clone() for p in model.parameters()],
            [m.training for m in model.modules()], torch.get_rng_state())


@pytest.mark.parametrize("kind", OPERATORS)
def test_model_left_bitwise_identical(kind):
    model, (x, y) = mlp(), classification_batch()
    nn.CrossEntropyLoss()(model(x), y).backward()  # grads present
    model.eval()
    model[0].train()  # mixed modes
    weights, grads, modes, rng = _snapshot(model)
    op = OPERATORS[kind][0](model, nn.CrossEntropyLoss(), (x, y))
    lanczos(op, k=2, generator=torch.Generator().manual_seed(0))
    op.matmat(torch.ones(op.dim, 2, dtype=DT))
    w2, g2, m2, rng2 = _snapshot(model)
    assert all(torch.equal(a, b) for a, b in zip(weights, w2))
    assert all(torch.equal(a, b) for a, b in zip(grads, g2))
    assert modes == m2 and torch.equal(rng, rng2)


def test_nondeterministic_model_is_refused_and_rng_kept():
    model = nn.Sequential(nn.Linear(5, 4), nn.Dropout(0.5), nn.Linear(4, 3)).to(DT)
    x, y = classification_batch()
    rng = torch.get_rng_state()
    with pytest.raises(ConfigError, match="eval mode"):
        HessianOperator(model, nn.CrossEntropyLoss(), (x, y))
    assert torch.equal(rng, torch.get_rng_state())
    model.eval()
    HessianOperator(model, nn.CrossEntropyLoss(), (x, y))


def test_bad_inputs_raise():
    model, (x, y) = mlp(), classification_batch()
    with pytest.raises(ConfigError, match="names the model does not have"):
        HessianOperator(model, nn.CrossEntropyLoss(), (x, y), params={"nope": x})
    with pytest.raises(ConfigError, match="data"):
        HessianOperator(model, nn.CrossEntropyLoss(), [])
    op = HessianOperator(model, nn.CrossEntropyLoss(), (x, y))
    with pytest.raises(ConfigError, match="shape"):
        op.matvec(torch.ones(3, dtype=DT))
    with pytest.raises(ConfigError, match="subset"):
        op.restrict(["nope"])


def test_scipy_adapter_eigsh_agrees():
    model, (x, y) = mlp(), classification_batch()
    op = HessianOperator(model, nn.CrossEntropyLoss(), (x, y))
    dense = dense_hessian(model, nn.CrossEntropyLoss(), x, y).numpy()
    lin = op.to_scipy()
    assert lin.dtype == np.float64
    vals = spla.eigsh(lin, k=3, which="LA", tol=1e-12, v0=np.ones(op.dim))[0]
    np.testing.assert_allclose(np.sort(vals), np.linalg.eigvalsh(dense)[-3:], rtol=1e-9)
    block = np.random.default_rng(0).standard_normal((op.dim, 2))
    np.testing.assert_allclose(lin @ block, dense @ block, rtol=1e-10, atol=1e-12)


def test_make_hvp_still_matches_dense():
    model, (x, y) = mlp(), classification_batch()
    hvp, dim = make_hvp(model, nn.CrossEntropyLoss(), x, y)
    dense = dense_hessian(model, nn.CrossEntropyLoss(), x, y)
    v = torch.randn(dim, generator=torch.Generator().manual_seed(0), dtype=DT)
    assert torch.allclose(hvp(v), dense @ v, rtol=1e-10, atol=1e-12)


def test_double_backward_hessian_equals_forward_over_reverse_and_dense():
    from trainlab.errors import ConfigError

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(),
                                torch.nn.Linear(5, 3)).double()
    x, y = torch.randn(7, 4, dtype=torch.float64), torch.randint(0, 3, (7,))
    loss = torch.nn.functional.cross_entropy
    fr = HessianOperator(model, loss, (x, y))
    db = HessianOperator(model, loss, (x, y), method="double-backward")
    eye = torch.eye(fr.dim, dtype=torch.float64)
    dense = fr.matmat(eye)
    by_matvec = torch.stack([db.matvec(eye[:, j]) for j in range(db.dim)], dim=1)
    torch.testing.assert_close(by_matvec, dense, rtol=1e-12, atol=1e-12)
    dense_ref = torch.func.hessian(lambda w: loss(torch.func.functional_call(
        model, fr._split(w), (x,)), y))(fr.flat_params())
    torch.testing.assert_close(by_matvec, dense_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dense, dense.T, rtol=1e-10, atol=1e-12)
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ConfigError, match="method"):
        HessianOperator(model, loss, (x, y), method="newton")


def test_retained_graph_products_equal_fresh_ones_and_follow_inplace_writes():
    from trainlab.errors import ConfigError

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(),
                                torch.nn.Linear(5, 3)).double()
    x, y = torch.randn(7, 4, dtype=torch.float64), torch.randint(0, 3, (7,))
    loss = torch.nn.functional.cross_entropy
    fresh = HessianOperator(model, loss, [(x[:4], y[:4]), (x[4:], y[4:])])
    kept = HessianOperator(model, loss, [(x[:4], y[:4]), (x[4:], y[4:])],
                           method="double-backward", retain_graph=True)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):  # later products run through the kept graphs
        v = torch.randn(fresh.dim, generator=g, dtype=torch.float64)
        torch.testing.assert_close(kept.matvec(v), fresh.matvec(v), rtol=1e-12, atol=1e-13)
    assert len(kept._graphs) == 2
    with torch.no_grad():  # an in-place write: the kept graph is rebuilt, not reused
        model[0].weight.mul_(1.5)
    torch.testing.assert_close(kept.matvec(v), fresh.matvec(v), rtol=1e-12, atol=1e-13)
    block = kept.restrict(["2.weight"])
    torch.testing.assert_close(block.matvec(v[-15:]), fresh.restrict(["2.weight"]).matvec(
        v[-15:]), rtol=1e-12, atol=1e-13)
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ConfigError, match="retain_graph"):
        HessianOperator(model, loss, (x, y), method="forward-over-reverse", retain_graph=True)
