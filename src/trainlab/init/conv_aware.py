r"""Convolution Aware Initialization: filters built orthogonal in the Fourier domain
("Convolution Aware Initialization", A. Aghajanyan, 2017, papers.md row 24)."""

from __future__ import annotations

import math

import torch

from trainlab.errors import check_range
from trainlab.init._apply import INITS, fan_in_out, tensor_scheme
from trainlab.init.orthogonal import orthogonal_
from trainlab.log import warn_once


def _orthogonal_rows(count: int, size: int, generator: torch.Generator | None) -> torch.Tensor:
    """``count`` rows of length ``size``, orthonormal in blocks of ``size``: the eigenbases
    (left singular vectors) of random symmetric matrices, stacked."""
    blocks = []
    for _ in range(count // size + 1):
        a = torch.randn(size, size, generator=generator, dtype=torch.float64)
        a = a + a.T - torch.diag(torch.diagonal(a))
        u, _, _ = torch.linalg.svd(a)
        blocks.append(u.T)
    return torch.cat(blocks)[:count]


def conv_aware_(tensor: torch.Tensor, eps_std: float = 0.05, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Fill a convolution weight ``(out, in, *kernel)`` with CAI, in place.

    For each output filter, the ``in`` kernels are given real Fourier spectra (of the shape of
    ``rfftn`` of one kernel, ``size`` bins) taken as rows of orthonormal bases, so that up to
    ``size`` kernels of one filter have mutually orthogonal spectra; each spectrum goes back to
    the spatial domain with ``irfftn``, plus ``N(0, eps_std^2)`` noise. Finally the whole tensor
    is rescaled to the He variance ``2 / fan_in`` (exactly, as a population variance).

    Defaults and construction follow the paper's reference implementation (keras-contrib
    ``ConvolutionAware``, eps_std 0.05), transposed to torch's ``(out, in, *kernel)`` layout;
    kernels with a single Fourier bin get ``N(0, eps_std^2)``, and weights that are not 3-5-D
    fall back to :func:`~trainlab.init.orthogonal.orthogonal_`. Real spectra are not exactly
    Hermitian-symmetric for multi-dimensional kernels, so there the round trip (and hence the
    orthogonality) is approximate; for 1-D odd kernels it is exact.

    Deviations from the paper: the construction and the default ``eps_std`` are those of the
    reference implementation named above, not re-derived from the paper's text (not read for
    this paragraph). Kernels with one Fourier bin get noise only; weights that are not 3-5-D
    get :func:`~trainlab.init.orthogonal.orthogonal_` (with a warning); for
    multi-dimensional kernels the spectra are orthogonal only approximately (see above). The
    model-level scheme sets biases to zero.
    """
    check_range("eps_std", eps_std, low=0.0, owner="conv_aware_")
    if tensor.dim() not in (3, 4, 5):
        warn_once(f"conv-aware-{tensor.dim()}d", "conv_aware_: a %d-D weight is not a "
                  "convolution kernel; it gets orthogonal_ instead", tensor.dim())
        return orthogonal_(tensor, generator=generator)
    out_ch, in_ch, *kernel = tensor.shape
    fshape = torch.fft.rfftn(torch.zeros(kernel, dtype=torch.float64)).shape
    size = math.prod(fshape)
    dims = tuple(range(-len(kernel), 0))
    filters = []
    for _ in range(out_ch):
        if size == 1:
            spatial = eps_std * torch.randn(in_ch, *kernel, generator=generator,
                                            dtype=torch.float64)
        else:
            rows = _orthogonal_rows(in_ch, size, generator).reshape(in_ch, *fshape)
            spatial = torch.fft.irfftn(rows.to(torch.complex128), s=kernel, dim=dims)
            spatial = spatial + eps_std * torch.randn(spatial.shape, generator=generator,
                                                      dtype=torch.float64)
        filters.append(spatial)
    w = torch.stack(filters)
    fan_in, _ = fan_in_out(tensor)
    w = w * math.sqrt(2.0 / fan_in / w.var(unbiased=False).item())
    with torch.no_grad():
        tensor.copy_(w.to(tensor.dtype))
    return tensor


INITS.register("conv-aware", tensor_scheme(conv_aware_), papers=(24,),
               summary="CAI: conv kernels with orthogonal Fourier spectra at He variance")
