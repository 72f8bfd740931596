r"""The t-product algebra of third-order tensors (Kilmer & Martin 2011), the setting of
"Implicit Regularization for Tubal Tensor Factorizations via Gradient Descent" (Karnik et
al., 2024; papers.md row 23).

A tensor :math:`A \in R^{m \times n \times k}` is an :math:`m \times n` matrix of *tubes*
(vectors along the third axis). The t-product :math:`C = A * B` of :math:`A` (m, r, k) and
:math:`B` (r, n, k) multiplies like matrices with circular convolution of tubes in place of
products of scalars,

.. math:: C_{ij} = \sum_{l} A_{il} \circledast B_{lj}, \qquad
    (a \circledast b)_t = \sum_{s} a_s\, b_{(t - s) \bmod k},

which is :math:`\mathrm{unfold}(C) = \mathrm{bcirc}(A)\,\mathrm{unfold}(B)` with the
block-circulant matrix of the frontal slices. The discrete Fourier transform along the tubes
diagonalizes circular convolution, so in the Fourier domain every frontal slice multiplies
independently: :math:`\hat C_j = \hat A_j \hat B_j`. The t-transpose :math:`A^T` transposes
every frontal slice and reverses the order of slices 2..k, so that
:math:`\widehat{A^T}_j = \hat A_j^H` for real :math:`A`. The *tubal rank* of :math:`X` is the
largest rank among its Fourier-domain slices :math:`\hat X_j`.
"""

from __future__ import annotations

import torch

from trainlab.errors import ConfigError, check_range


def _check3(name: str, t: torch.Tensor) -> None:
    if t.dim() != 3:
        raise ConfigError(f"{name} must be a third-order tensor (m, n, k). "
                          f"Got shape {tuple(t.shape)}.")


def t_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The t-product ``a * b`` of real tensors ``a`` (m, r, k) and ``b`` (r, n, k):
    slice-wise matrix products in the Fourier domain along the tubes. Returns (m, n, k)."""
    _check3("a", a)
    _check3("b", b)
    if a.shape[1] != b.shape[0] or a.shape[2] != b.shape[2]:
        raise ConfigError("t_product: needs a (m, r, k) and b (r, n, k). Got shapes "
                          f"{tuple(a.shape)} and {tuple(b.shape)}.")
    fa, fb = torch.fft.fft(a, dim=2), torch.fft.fft(b, dim=2)
    return torch.fft.ifft(torch.einsum("irk,rjk->ijk", fa, fb), dim=2).real


def t_transpose(a: torch.Tensor) -> torch.Tensor:
    """The t-transpose of ``a`` (m, n, k): ``(n, m, k)`` with every frontal slice transposed
    and slices 2..k in reverse order (so that ``(a * b)^T = b^T * a^T``)."""
    _check3("a", a)
    t = a.transpose(0, 1)
    return torch.cat([t[:, :, :1], t[:, :, 1:].flip(2)], dim=2)


def t_identity(n: int, k: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The identity tensor (n, n, k): the identity matrix in the first frontal slice, zeros
    elsewhere."""
    check_range("n", n, low=1, owner="t_identity")
    check_range("k", k, low=1, owner="t_identity")
    out = torch.zeros(n, n, k, dtype=dtype)
    out[:, :, 0] = torch.eye(n, dtype=dtype)
    return out


def t_gram(u: torch.Tensor) -> torch.Tensor:
    r"""The t-Gram tensor :math:`U * U^T` of a real (n, r, k) tensor, computed directly in the
    Fourier domain (every slice is :math:`\hat U_j \hat U_j^H`). Returns (n, n, k); it is
    t-symmetric and positive semidefinite, of tubal rank at most r."""
    _check3("u", u)
    f = torch.fft.fft(u, dim=2)
    return torch.fft.ifft(torch.einsum("irk,jrk->ijk", f, f.conj()), dim=2).real


def tubal_rank(x: torch.Tensor, rel: float = 1e-2) -> int:
    """Numerical tubal rank of ``x`` (m, n, k): the largest number, over the Fourier-domain
    frontal slices, of singular values above ``rel`` times the largest singular value of
    all slices."""
    _check3("x", x)
    check_range("rel", rel, low=0.0, low_open=True, high=1.0, owner="tubal_rank")
    sv = torch.linalg.svdvals(torch.fft.fft(x, dim=2).permute(2, 0, 1))
    return int((sv > rel * sv.max()).sum(1).max())
