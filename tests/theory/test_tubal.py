"""t-product algebra against its definition (block-circulant matrix times unfolded tensor,
written here with explicit circular convolutions), the t-transpose's reversal rule, the
identity, t_gram = U * U^T, and the tubal rank of tensors built with a known rank."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.theory import t_gram, t_identity, t_product, t_transpose, tubal_rank


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _bcirc_product(a, b):
    """unfold(C) = bcirc(A) unfold(B): block (i, j) of bcirc(A) is frontal slice (i - j) mod k."""
    m, r, k = a.shape
    bc = torch.zeros(m * k, r * k, dtype=a.dtype)
    for i in range(k):
        for j in range(k):
            bc[i * m:(i + 1) * m, j * r:(j + 1) * r] = a[:, :, (i - j) % k]
    unfold_b = torch.cat([b[:, :, j] for j in range(k)], dim=0)  # (r k, n)
    c = bc @ unfold_b
    return torch.stack([c[i * m:(i + 1) * m] for i in range(k)], dim=2)


def test_t_product_is_the_block_circulant_definition():
    a, b = _rand(3, 4, 5, seed=1), _rand(4, 2, 5, seed=2)
    torch.testing.assert_close(t_product(a, b), _bcirc_product(a, b), rtol=1e-12, atol=1e-12)
    # one tube entry by explicit circular convolution: C_00 = sum_l A_0l (*) B_l0
    conv = sum(torch.stack([sum(a[0, l, s] * b[l, 0, (t - s) % 5] for s in range(5))
                            for t in range(5)]) for l in range(4))
    torch.testing.assert_close(t_product(a, b)[0, 0], conv)


def test_transpose_identity_and_gram():
    a, b = _rand(3, 4, 6, seed=3), _rand(4, 2, 6, seed=4)
    at = t_transpose(a)
    assert at.shape == (4, 3, 6)
    torch.testing.assert_close(at[:, :, 0], a[:, :, 0].T)
    torch.testing.assert_close(at[:, :, 1], a[:, :, 5].T)  # slices 2..k reversed
    torch.testing.assert_close(t_transpose(at), a)
    torch.testing.assert_close(t_transpose(t_product(a, b)), t_product(t_transpose(b), at))
    torch.testing.assert_close(t_product(t_identity(3, 6), a), a)
    torch.testing.assert_close(t_gram(a), t_product(a, at), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(t_gram(a), t_transpose(t_gram(a)))  # t-symmetric


def test_tubal_rank_of_constructed_tensors():
    for r in (1, 2, 3):
        x = t_product(_rand(7, r, 4, seed=r), _rand(r, 6, 4, seed=10 + r))
        assert tubal_rank(x) == r
        assert tubal_rank(t_gram(_rand(8, r, 5, seed=20 + r))) == r
    # rank r in one Fourier slice only: the tubal rank is the largest slice rank
    f = torch.zeros(5, 5, 4, dtype=torch.complex128)
    f[:, :, 0] = torch.eye(5, dtype=torch.complex128)
    f[:2, :2, 2] = torch.eye(2, dtype=torch.complex128)  # the real-valued Nyquist slice
    x = torch.fft.ifft(f, dim=2).real
    assert tubal_rank(x) == 5 and tubal_rank(x[:, :, :1]) == 5
    assert tubal_rank(t_identity(4, 3)) == 4


def test_errors():
    with pytest.raises(ConfigError, match="t_product"):
        t_product(_rand(2, 3, 4), _rand(2, 3, 4))
    with pytest.raises(ConfigError, match="third-order"):
        t_transpose(_rand(2, 3))
    with pytest.raises(ConfigError, match="rel"):
        tubal_rank(_rand(2, 2, 2), rel=0.0)
