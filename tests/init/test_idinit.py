"""IDInit (Pan et al. 2025, papers.md row 19): identity-like initialization, checked entry by
entry against a loop over paper Eq. 3 and by the identity transition it is built for."""

import inspect
import itertools
import math

import pytest
import torch

import trainlab.init as tinit
from trainlab.errors import ConfigError
from trainlab.init.idinit import idi_matrix
from trainlab.models.resnet import ResNet


def _eq3(d_out: int, d_in: int, tau: float) -> torch.Tensor:
    """Paper Eq. 3 entry by entry: theta[m, j] = tau iff m = j (mod d_in)."""
    theta = torch.zeros(d_out, d_in, dtype=torch.float64)
    for m in range(d_out):
        for j in range(d_in):
            if (m - j) % d_in == 0:
                theta[m, j] = tau
    return theta


@pytest.mark.parametrize(("d_out", "d_in"), [(1, 1), (3, 3), (5, 2), (7, 3), (9, 3), (6, 4),
                                             (2, 5), (3, 8), (1, 4), (4, 1)])
def test_matrix_matches_eq3_entry_by_entry_for_every_shape_case(d_out, d_in):
    got = tinit.idinit_(torch.empty(d_out, d_in, dtype=torch.float64), tau=0.5)
    torch.testing.assert_close(got, _eq3(d_out, d_in, 0.5), atol=0, rtol=0)


def test_widening_repeats_identity_and_narrowing_keeps_first_inputs():
    tall = tinit.idinit_(torch.empty(10, 4), tau=2.0)
    torch.testing.assert_close(tall[:4], 2 * torch.eye(4))
    torch.testing.assert_close(tall[4:8], 2 * torch.eye(4))  # repeated, not zero-padded
    torch.testing.assert_close(tall[8:], 2 * torch.eye(4)[:2])
    assert not (torch.nn.init.eye_(torch.empty(10, 4))[4:] != 0).any()  # eye_ zero-pads
    wide = tinit.idinit_(torch.empty(3, 8))
    torch.testing.assert_close(wide, torch.cat([torch.eye(3), torch.zeros(3, 5)], dim=1))
    assert tinit.idinit_(torch.empty(4, 2)).tolist() == [[1, 0], [0, 1], [1, 0], [0, 1]]


def test_deep_stack_with_width_changes_is_exact_identity():
    # widen (identity repeated) then narrow ([I 0]) composes to the identity; a tiled or
    # zero-padded narrowing would not (it sums copies or drops units).
    widths = [16] + [40, 16, 24, 16] * 8
    layers = []
    for a, b in itertools.pairwise(widths):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers).double()
    tinit.apply(model, "idinit")
    x = torch.rand(5, 16, dtype=torch.float64)
    torch.testing.assert_close(model(x), x, atol=0, rtol=0)
    # Every hidden unit carries a copy of an input: none starts dead.
    h = model[:2](x)
    assert (h > 0).all()


def _patch_reference(c_out: int, c_in: int, kernel: tuple[int, ...], tau: float) -> torch.Tensor:
    """IDIC by loops: flat column j = c * K + row-major kernel index; Eq. 3 over D = c_in*K."""
    k_total = math.prod(kernel)
    w = torch.zeros(c_out, c_in, *kernel, dtype=torch.float64)
    for m in range(c_out):
        for c in range(c_in):
            for s, pos in enumerate(itertools.product(*(range(k) for k in kernel))):
                if (m - (c * k_total + s)) % (c_in * k_total) == 0:
                    w[(m, c, *pos)] = tau
    return w


@pytest.mark.parametrize(("c_out", "c_in", "kernel"), [(6, 3, (3,)), (4, 4, (3, 3)),
                                                       (20, 2, (3,)), (5, 1, (2, 3)),
                                                       (3, 8, (1,))])
def test_patch_maintain_layout_entry_by_entry(c_out, c_in, kernel):
    got = tinit.idinit_(torch.empty(c_out, c_in, *kernel, dtype=torch.float64), tau=1.5)
    torch.testing.assert_close(got, _patch_reference(c_out, c_in, kernel, 1.5), atol=0, rtol=0)


def test_patch_maintain_conv_outputs_shifted_copies_of_input_channels():
    conv = torch.nn.Conv1d(4, 4, 3, padding=1, bias=False).double()
    tinit.idinit_(conv.weight)
    x = torch.randn(2, 4, 11, dtype=torch.float64)
    padded = torch.nn.functional.pad(x, (1, 1))
    for m in range(4):
        c, s = divmod(m, 3)  # input channel m // K at kernel tap m % K
        torch.testing.assert_close(conv(x)[:, m], padded[:, c, s:s + 11], atol=0, rtol=0)


def test_channel_maintain_is_dirac_identity_and_equals_patch_for_1x1():
    conv = torch.nn.Conv1d(6, 6, 5, padding=2).double()
    tinit.apply(conv, "idinit", conv="channel")
    x = torch.randn(2, 6, 20, dtype=torch.float64)
    torch.testing.assert_close(conv(x), x, atol=0, rtol=0)
    w = tinit.idinit_(torch.empty(6, 3, 3, 5, dtype=torch.float64), tau=2.0, conv="channel")
    torch.testing.assert_close(w[:, :, 1, 2], _eq3(6, 3, 2.0), atol=0, rtol=0)
    w[:, :, 1, 2] = 0
    assert (w == 0).all()
    a = tinit.idinit_(torch.empty(7, 3, 1, 1), conv="patch")
    b = tinit.idinit_(torch.empty(7, 3, 1, 1), conv="channel")
    assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["mlp", "conv1d"])
def test_residual_blocks_are_identity_up_to_eps(kind):
    model = ResNet((8, 12) if kind == "conv1d" else (8,), 3, blocks=3, width=8, kind=kind)
    report = tinit.apply(model.double(), "idinit", eps=1e-6)
    assert sum(r.extra["residual_last"] for r in report.layers) == 3
    block = model.blocks[0]
    shape = (4, 8, 12) if kind == "conv1d" else (4, 8)
    x = torch.rand(*shape, dtype=torch.float64)
    rel = (block(x) - x).norm() / x.norm()
    assert 0 < rel < 1e-5
    assert block.branch_out.weight.abs().max().item() == 1e-6
    expected = idi_matrix(8, block.branch_out.weight[0].numel(), 1e-6, dtype=torch.float64)
    torch.testing.assert_close(block.branch_out.weight.reshape(8, -1), expected, atol=0, rtol=0)


def test_paper_default_values_tau_one_eps_1e6_patch_conv():
    params = inspect.signature(tinit.INITS.get("idinit")).parameters
    assert params["tau"].default == 1.0 and params["eps"].default == 1e-6
    assert params["conv"].default == "patch"
    assert inspect.signature(tinit.idinit_zero_).parameters["eps"].default == 1e-6


def test_errors_name_the_parameter():
    with pytest.raises(ConfigError, match="eps"):
        tinit.idinit_zero_(torch.empty(3, 3), eps=-1.0)
    with pytest.raises(ValueError, match="2 dims"):
        tinit.idinit_(torch.empty(4))
    with pytest.raises(ConfigError, match="'conv'.*'patch', 'channel'.*'dirac'"):
        tinit.idinit_(torch.empty(4, 4, 3), conv="dirac")
