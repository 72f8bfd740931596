"""IDInit (Pan et al. 2025, papers.md row 19): identity-like initialization."""

import torch

import trainlab.init as tinit
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
