"""Convolution Aware Initialization (Aghajanyan 2017, papers.md row 24)."""

import pytest
import torch

import trainlab.init as tinit


@pytest.mark.parametrize("shape", [(8, 3, 5), (16, 4, 3, 3), (4, 2, 3, 3, 3)])
def test_variance_is_he_exactly(shape):
    w = tinit.conv_aware_(torch.empty(*shape, dtype=torch.float64),
                          generator=torch.Generator().manual_seed(0))
    fan_in = shape[1] * torch.tensor(shape[2:]).prod().item()
    assert w.var(unbiased=False).item() == pytest.approx(2 / fan_in, rel=1e-10)


def test_filter_spectra_are_orthogonal_1d_odd_kernel():
    w = tinit.conv_aware_(torch.empty(6, 3, 5, dtype=torch.float64), eps_std=0.0,
                          generator=torch.Generator().manual_seed(1))
    for f in range(6):
        spec = torch.fft.rfft(w[f], dim=-1)  # (in=3, bins=3)
        gram = spec @ spec.conj().T
        off = gram - torch.diag(torch.diagonal(gram))
        assert off.abs().max().item() < 1e-10 * gram.abs().max().item()
        diag = torch.diagonal(gram).real
        torch.testing.assert_close(diag, diag[0].expand(3), rtol=1e-10, atol=0)


def test_random_kernels_are_not_orthogonal_control():
    w = torch.randn(6, 3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    spec = torch.fft.rfft(w[0], dim=-1)
    gram = spec @ spec.conj().T
    assert (gram - torch.diag(torch.diagonal(gram))).abs().max() > 1e-3


def test_same_generator_same_tensor_and_fallback():
    a = tinit.conv_aware_(torch.empty(4, 3, 3, 3), generator=torch.Generator().manual_seed(5))
    b = tinit.conv_aware_(torch.empty(4, 3, 3, 3), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    lin = tinit.conv_aware_(torch.empty(5, 5, dtype=torch.float64),
                            generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(lin @ lin.T, torch.eye(5, dtype=torch.float64))
