"""Random orthogonal initialization (Saxe, McClelland & Ganguli, 2014; papers.md row 1)."""

from __future__ import annotations

import warnings

import torch

from trainlab.errors import check_range
from trainlab.init._apply import INITS, tensor_scheme


def orthogonal_(tensor: torch.Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
                ) -> torch.Tensor:
    r"""Fill ``tensor`` with a Haar-random (semi-)orthogonal matrix times ``gain``, in place.

    The weight is viewed as a matrix ``(rows, cols) = (out, in * prod(kernel))``. If
    ``rows <= cols`` the rows are orthonormal (``W W^T = gain^2 I``), otherwise the columns
    (``W^T W = gain^2 I``). Haar measure comes from the QR decomposition of a Gaussian matrix
    with the signs of ``diag(R)`` folded into ``Q`` (Mezzadri, 2007), so the draw is uniform.

    Saxe et al. show that a product of such layers keeps every singular value of the
    input-output map at ``gain**depth``, which gives depth-independent learning times in deep
    linear networks ("Exact solutions to the nonlinear dynamics of learning in deep linear
    neural networks", 2014, papers.md row 1).

    Args:
        tensor: a tensor with at least 2 dims.
        gain: multiplicative scale, >= 0 (1 for linear nets; sqrt(2) is common for ReLU).
        generator: source of randomness.
    """
    check_range("gain", gain, low=0.0, owner="orthogonal_")
    if tensor.dim() < 2:
        raise ValueError(f"orthogonal_ needs at least 2 dims, got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    big, small = max(rows, cols), min(rows, cols)
    g = torch.randn(big, small, generator=generator, dtype=torch.float64,
                    device=tensor.device if generator is None else generator.device)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(()))
    if rows < cols:
        q = q.T
    with torch.no_grad():
        tensor.view(rows, cols).copy_(q.to(tensor.dtype) * gain)
    return tensor


INITS.register("orthogonal", tensor_scheme(orthogonal_), papers=(1,),
               summary="Haar-random (semi-)orthogonal weights times gain (Saxe et al. 2014)")
