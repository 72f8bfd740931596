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

    Deviations from the paper: non-square weights get semi-orthogonal matrices (rows or
    columns orthonormal, as above) and convolution kernels are flattened to
    ``(out, in * prod(kernel))`` (the paper has no convolutions). ``gain`` defaults to 1 (the
    linear case); a gain for a nonlinear network must be passed. The model-level scheme sets
    biases to zero. Checked: the random orthogonal initial condition the abstract states; the
    paper's handling of unequal widths and its nonlinear-network gains were not re-read for
    this paragraph.

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


def decoupled_(weights: list[torch.Tensor], correlation: torch.Tensor, mode_strength: float = 1e-3,
               *, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    r"""Saxe et al.'s "decoupled" initial condition for a deep linear chain, in place.

    ``weights`` are the chain's matrices from input to output (``W_1: (h_1, in)``, ...,
    ``W_N: (out, h_{N-1})``) and ``correlation`` is the input-output correlation
    :math:`\Sigma^{31} = \sum_\mu y^\mu x^{\mu T} = U S V^T` (shape ``(out, in)``). With random
    orthogonal :math:`R_l` for the hidden layers and :math:`r = \min(\text{widths})` modes:

    .. math::
        W_1 = R_1 D V_r^T,\quad W_l = R_l D R_{l-1}^T,\quad W_N = U_r D R_{N-1}^T,\quad
        D = a^{1/N} I_r,

    so :math:`W_N \cdots W_1 = a\, U_r V_r^T`: every mode :math:`\alpha` starts with strength
    :math:`u_\alpha = a` (``mode_strength``) and, for whitened inputs, evolves independently
    along the closed-form sigmoid of the paper ("Exact solutions to the nonlinear dynamics of
    learning in deep linear neural networks", 2014, papers.md row 1; paper: :math:`u_0 = 10^{-3}`
    on MNIST, Fig. 4). Deviation: the paper leaves the split of :math:`a` across layers free
    (only the product matters); we balance it, :math:`a^{1/N}` per layer.
    """
    check_range("mode_strength", mode_strength, low=0.0, owner="decoupled_")
    if not weights:
        raise ValueError("decoupled_ needs at least one weight matrix")
    for a, b in zip(weights[:-1], weights[1:]):
        if a.dim() != 2 or b.dim() != 2 or b.shape[1] != a.shape[0]:
            raise ValueError("decoupled_ needs a chain: W_{l+1}.shape[1] == W_l.shape[0]")
    out_dim, in_dim = weights[-1].shape[0], weights[0].shape[1]
    if tuple(correlation.shape) != (out_dim, in_dim):
        raise ValueError(f"correlation must have shape {(out_dim, in_dim)}, got "
                         f"{tuple(correlation.shape)}")
    u, _, vh = torch.linalg.svd(correlation.double(), full_matrices=False)
    r = min([w.shape[0] for w in weights[:-1]] + [u.shape[1]])
    d = mode_strength ** (1.0 / len(weights))
    bases = [vh[:r].T]  # in x r
    for w in weights[:-1]:
        bases.append(orthogonal_(torch.empty(w.shape[0], w.shape[0], dtype=torch.float64),
                                 generator=generator)[:, :r])
    bases.append(u[:, :r])
    with torch.no_grad():
        for layer, w in enumerate(weights):
            w.copy_((d * bases[layer + 1] @ bases[layer].T).to(w.dtype))
    return weights


def decoupled(model: torch.nn.Module, *, batch, generator: torch.Generator | None = None,
              select=None, scheme: str = "decoupled", mode_strength: float = 1e-3):
    """Model-level :func:`decoupled_`: the selected layers must form a bias-free linear chain
    in module order; ``batch = (inputs, targets)`` gives :math:`\\Sigma^{31}` (targets as
    vectors, e.g. one-hot for classification).

    Deviations from the paper: the mode strength is split evenly over the layers (see
    :func:`decoupled_`); :math:`\\Sigma^{31}` is that of the given batch, whose inputs are
    not whitened here, while the paper's closed-form mode dynamics assume whitened inputs
    (:math:`\\Sigma^{11} = I`); biases are set to zero (the paper's networks have none).
    """
    from trainlab.errors import ConfigError
    from trainlab.init._apply import InitReport, LayerInit, selected

    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ConfigError("init 'decoupled' needs batch=(inputs, targets)")
    x, y = batch
    x = x.reshape(x.shape[0], -1).double()
    if y.dim() == 1:
        y = torch.nn.functional.one_hot(y.long()).double()
    layers = selected(model, select)
    corr = y.reshape(y.shape[0], -1).double().T @ x
    decoupled_([m.weight for _, m in layers], corr, mode_strength, generator=generator)
    with torch.no_grad():
        for _, m in layers:
            if isinstance(getattr(m, "bias", None), torch.Tensor):
                m.bias.zero_()
    return InitReport(scheme, tuple(LayerInit(n) for n, _ in layers))


INITS.register("decoupled", decoupled, papers=(1,), needs_batch=True, batch_kind="pair",
               summary="Saxe's decoupled deep-linear init aligned with the data's SVD modes")
