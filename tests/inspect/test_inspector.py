"""The init-time inspector against plain references."""

import json
import math

import pytest
import torch

import trainlab.init as tinit
from trainlab.inspect import (
    inspect_init,
    jacobian_singular_values,
    report_page,
    rich_table,
    weight_product_singular_values,
)
from trainlab.models import build_model

F = torch.nn.functional


def _batch(n=32, d=6, c=3):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(n, d, generator=g, dtype=torch.float64),
            torch.randint(0, c, (n,), generator=g))


def test_jacobian_singular_values_match_dense_reference():
    model = build_model("mlp", (6,), 3, depth=2, width=8, activation="tanh").double()
    x, _ = _batch()
    sv = jacobian_singular_values(model, x, max_inputs=3)
    ref = torch.cat([torch.linalg.svdvals(torch.autograd.functional.jacobian(model, x[i:i + 1])
                                          .reshape(3, 6)) for i in range(3)])
    torch.testing.assert_close(sv, ref.sort(descending=True).values)


def test_orthogonal_deep_linear_net_is_isometric():
    model = build_model("deep-linear", (16,), 16, depth=20, width=16).double()
    tinit.apply(model, "orthogonal", generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 16, dtype=torch.float64)
    torch.testing.assert_close(jacobian_singular_values(model, x),
                               torch.ones(64, dtype=torch.float64))
    torch.testing.assert_close(weight_product_singular_values(model),
                               torch.ones(16, dtype=torch.float64))


def test_weight_product_reference_and_conv_is_none():
    model = build_model("mlp", (6,), 3, depth=2, width=8).double()
    ws = [m.weight for m in model if isinstance(m, torch.nn.Linear)]
    ref = torch.linalg.svdvals(ws[2] @ ws[1] @ ws[0])
    torch.testing.assert_close(weight_product_singular_values(model), ref)
    assert weight_product_singular_values(build_model("cnn1d", (20,), 3)) is None


def test_signal_hessian_and_caller_model_untouched():
    model = build_model("mlp", (6,), 3, depth=3, width=10, activation="tanh").double()
    before = [p.detach().clone() for p in model.parameters()]
    x, y = _batch()
    result = inspect_init(model, (x, y), ["orthogonal", "kaiming-normal"], F.cross_entropy,
                          seed=3)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    insp = result.schemes[1]
    assert insp.layers == ("1", "3", "5", "7")
    # reference: re-initialize a copy with the same seed and measure by hand
    ref = build_model("mlp", (6,), 3, depth=3, width=10, activation="tanh").double()
    tinit.apply(ref, "kaiming-normal", generator=torch.Generator().manual_seed(3))
    h, outs = x, []
    for layer in ref:
        h = layer(h)
        if isinstance(layer, torch.nn.Linear):
            outs.append(h)
    assert insp.forward_var == pytest.approx([o.var().item() for o in outs], rel=1e-10)
    grads = torch.autograd.grad(F.cross_entropy(h, y), outs)
    assert insp.backward_var == pytest.approx([(g * 32).var().item() for g in grads], rel=1e-8)
    params = dict(ref.named_parameters())
    names = list(params)

    def loss_of(*flat):
        return F.cross_entropy(torch.func.functional_call(ref, dict(zip(names, flat)), (x,)), y)

    hess = torch.autograd.functional.hessian(loss_of, tuple(params.values()))
    sizes = [p.numel() for p in params.values()]
    dense = torch.cat([torch.cat([hess[i][j].reshape(sizes[i], sizes[j])
                                  for j in range(len(sizes))], 1) for i in range(len(sizes))])
    top = torch.linalg.eigvalsh(dense)[-1].item()
    assert insp.hessian_top == pytest.approx(top, rel=2e-2)


def test_json_table_and_page(tmp_path):
    model = build_model("mlp", (6,), 3, depth=2, width=8).double()
    result = inspect_init(model, _batch(), ["lsuv", "kumar"], F.cross_entropy,
                          measures=("signal", "bias", "jacobian"), meta={"model": "mlp"})
    data = json.loads(json.dumps(result.to_dict()))
    assert [s["scheme"] for s in data["schemes"]] == ["lsuv", "kumar"]
    assert data["schemes"][0]["hessian_top"] is None
    assert math.isfinite(data["schemes"][0]["summary"]["forward_var_ratio"])
    assert rich_table(result).row_count == 2
    path = report_page(result).write(tmp_path / "r.html")
    text = path.read_text()
    assert text.count("<img") >= 4 and "lsuv" in text


def test_unknown_scheme_and_measure():
    from trainlab.errors import ConfigError, UnknownNameError

    model = build_model("mlp", (6,), 3, depth=1, width=4).double()
    with pytest.raises(UnknownNameError):
        inspect_init(model, _batch(), ["nope"], F.cross_entropy)
    with pytest.raises(ConfigError, match="measures"):
        inspect_init(model, _batch(), ["orthogonal"], F.cross_entropy, measures=("x",))
