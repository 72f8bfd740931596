"""ICGN (papers.md row 57): the quadrature output against the closed-form integral, and the
Jacobian symmetric PSD (equal to H(x))."""

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.models import ICGN, MODELS, build_model


def _closed_form(net: ICGN, x: torch.Tensor) -> torch.Tensor:
    # int_0^1 sigma'(t z + b)^2 z dt = Q(z + b) - Q(b) with Q' = sigma'^2
    w, b = net.linear.weight, net.linear.bias
    if net.activation == "sigmoid":
        q = lambda u: torch.sigmoid(u) ** 2 / 2 - torch.sigmoid(u) ** 3 / 3  # noqa: E731
    else:
        q = lambda u: torch.tanh(u) - torch.tanh(u) ** 3 / 3  # noqa: E731
    return (q(x @ w.T + b) - q(b)) @ w


def _net(activation="sigmoid", nodes=16, seed=0):
    torch.manual_seed(seed)
    return ICGN(3, 8, activation=activation, nodes=nodes).double()


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_output_matches_closed_form_and_quadrature_error_falls(activation):
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    errs = []
    for nodes in (2, 4, 16):
        net = _net(activation, nodes)
        with torch.no_grad():
            errs.append(float((net(x) - _closed_form(net, x)).abs().max()))
    assert errs[2] < 1e-13 < errs[1] < errs[0]


def test_jacobian_is_symmetric_psd_and_equals_hessian_field():
    net = _net()
    for seed in range(3):
        x = torch.randn(3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        jac = torch.autograd.functional.jacobian(net, x)
        assert float((jac - jac.T).abs().max()) < 1e-13
        assert float(torch.linalg.eigvalsh(jac).min()) > -1e-13
        assert torch.allclose(jac, net.hessian(x), atol=1e-12)
    with torch.no_grad():
        assert float(net(torch.zeros(3, dtype=torch.float64)).abs().max()) == 0.0


def test_monotone_gradient_map():
    net = _net()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(50, 3, generator=g, dtype=torch.float64), torch.randn(50, 3, generator=g,
                                                                             dtype=torch.float64)
    with torch.no_grad():
        assert float(((net(x) - net(y)) * (x - y)).sum(1).min()) >= 0.0


def test_registry_builder_and_errors():
    model = build_model("icgn", (4,), 4, width=6)
    assert model(torch.randn(2, 4)).shape == (2, 4)
    assert MODELS.entry("icgn").papers == (57,)
    with pytest.raises(ConfigError, match="num_outputs"):
        build_model("icgn", (4,), 3)
    with pytest.raises(ConfigError, match="activation"):
        ICGN(3, activation="relu")
