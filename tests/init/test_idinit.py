"""IDInit (Pan et al. 2025, papers.md row 19): identity-like initialization."""

import inspect

import pytest
import torch

import trainlab.init as tinit
from trainlab.errors import ConfigError
from trainlab.models.resnet import ResNet


def test_square_is_identity_and_rectangular_has_full_rank():
    torch.testing.assert_close(tinit.idinit_(torch.empty(7, 7)), torch.eye(7))
    tall = tinit.idinit_(torch.empty(10, 4), tau=2.0)
    assert torch.linalg.matrix_rank(tall) == 4
    torch.testing.assert_close(tall[:4], 2 * torch.eye(4))
    torch.testing.assert_close(tall[4:8], 2 * torch.eye(4))  # repeated, not zero-padded
    wide = tinit.idinit_(torch.empty(3, 8))
    assert torch.linalg.matrix_rank(wide) == 3
    assert (wide.sum(dim=0) > 0).all()  # every input reaches an output
    eye = torch.nn.init.eye_(torch.empty(10, 4))
    assert (eye[4:] == 0).all() and not (tall[4:] == 0).all()


def test_deep_stack_computes_identity():
    layers = []
    for _ in range(30):
        layers += [torch.nn.Linear(16, 16), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers).double()
    tinit.apply(model, "idinit")
    x = torch.rand(5, 16, dtype=torch.float64)
    torch.testing.assert_close(model(x), x, atol=0, rtol=0)


def test_conv_identity_where_channels_match():
    conv = torch.nn.Conv1d(6, 6, 5, padding=2).double()
    tinit.apply(conv, "idinit")
    x = torch.randn(2, 6, 20, dtype=torch.float64)
    torch.testing.assert_close(conv(x), x, atol=0, rtol=0)


def test_residual_blocks_are_identity_up_to_eps():
    model = ResNet((8,), 3, blocks=3, width=8).double()
    report = tinit.apply(model, "idinit", eps=1e-6)
    assert sum(r.extra["residual_last"] for r in report.layers) == 3
    block = model.blocks[0]
    x = torch.rand(4, 8, dtype=torch.float64)
    rel = (block(x) - x).norm() / x.norm()
    assert 0 < rel < 1e-5
    assert block.branch_out.weight.abs().max().item() == 1e-6


def _eq3_reference(d_out: int, d_in: int, tau: float) -> torch.Tensor:
    """Paper Eq. 3 entry by entry: theta[m, j] = tau iff m = j (mod d_in)."""
    theta = torch.zeros(d_out, d_in, dtype=torch.float64)
    for m in range(d_out):
        for j in range(d_in):
            if (m - j) % d_in == 0:
                theta[m, j] = tau
    return theta


def test_widening_and_square_match_eq3_exactly():
    for d_out, d_in in [(1, 1), (3, 3), (5, 2), (7, 3), (9, 3), (6, 4)]:
        got = tinit.idinit_(torch.empty(d_out, d_in, dtype=torch.float64), tau=0.5)
        torch.testing.assert_close(got, _eq3_reference(d_out, d_in, 0.5), atol=0, rtol=0)
    # 1-based indices give the same matrix: (m + 1) - (j + 1) = m - j.
    assert tinit.idinit_(torch.empty(4, 2)).tolist() == [[1, 0], [0, 1], [1, 0], [0, 1]]


def test_narrowing_documented_deviation_from_literal_eq3():
    # Literal Eq. 3 drops inputs >= d_out; the implementation tiles instead (docstring).
    got = tinit.idinit_(torch.empty(2, 5, dtype=torch.float64))
    literal = _eq3_reference(2, 5, 1.0)
    assert (literal[:, 2:] == 0).all()
    expected = torch.tensor([[1, 0, 1, 0, 1], [0, 1, 0, 1, 0]], dtype=torch.float64)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)


def test_paper_default_values_tau_one_eps_1e6():
    params = inspect.signature(tinit.INITS.get("idinit")).parameters
    assert params["tau"].default == 1.0 and params["eps"].default == 1e-6
    assert inspect.signature(tinit.idinit_zero_).parameters["eps"].default == 1e-6


def test_conv_kernel_centre_carries_eq3_pattern():
    w = tinit.idinit_(torch.empty(6, 3, 3, 5, dtype=torch.float64), tau=2.0)
    torch.testing.assert_close(w[:, :, 1, 2], _eq3_reference(6, 3, 2.0), atol=0, rtol=0)
    w[:, :, 1, 2] = 0
    assert (w == 0).all()


def test_idiz_rejects_negative_eps_and_idi_rejects_vectors():
    with pytest.raises(ConfigError, match="eps"):
        tinit.idinit_zero_(torch.empty(3, 3), eps=-1.0)
    with pytest.raises(ValueError, match="2 dims"):
        tinit.idinit_(torch.empty(4))
