r"""IDInit: identity-like initialization for fully connected and convolution layers
("IDInit: A Universal and Stable Initialization Method for Neural Network Training",
Pan et al., ICLR 2025, papers.md row 19)."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import check_range
from trainlab.init._apply import INITS, InitReport, LayerInit, Selector, selected


def idinit_(tensor: torch.Tensor, tau: float = 1.0, *, generator: torch.Generator | None = None
            ) -> torch.Tensor:
    r"""Fill ``tensor`` with the padded identity :math:`\mathrm{IDI}_\tau`, in place.

    For a matrix :math:`\theta \in \mathbb R^{D_{out} \times D_{in}}` (paper Eq. 3),
    :math:`\theta_{m,j} = \tau` when :math:`m \equiv j \pmod{\min(D_{out}, D_{in})}`, else 0:
    the identity is *repeated* along the longer side instead of zero-padded as
    ``torch.nn.init.eye_`` does, so a widening layer copies its input (full column rank) and a
    narrowing layer sums input blocks (full row rank); no unit starts dead. For a convolution
    weight ``(out, in, *kernel)`` (IDIC) the same channel pattern sits at the kernel centre, so
    the convolution is the identity (a Dirac kernel) where channels match.

    Defaults: :math:`\tau = 1` (the paper's typical value).

    Deviations / what was checked: the paper's text was not retrieved; Eq. 3 is known from
    reviews as :math:`m \equiv j \pmod{D_i}` for widening layers. For narrowing layers we take
    the modulus over :math:`D_{out}` (tiling the identity horizontally) so that every input
    reaches an output. The paper's "patch-maintain" reshaping of IDIC and its "loosening"
    noise are not implemented. ``generator`` is accepted for the scheme interface and unused
    (the scheme is deterministic).
    """
    del generator
    if tensor.dim() < 2:
        raise ValueError(f"idinit_ needs at least 2 dims, got shape {tuple(tensor.shape)}")
    out_dim, in_dim = tensor.shape[:2]
    n = min(out_dim, in_dim)
    m = torch.arange(out_dim).unsqueeze(1)
    j = torch.arange(in_dim).unsqueeze(0)
    pattern = ((m - j) % n == 0).to(tensor.dtype) * tau
    with torch.no_grad():
        tensor.zero_()
        centre = tuple(k // 2 for k in tensor.shape[2:])
        tensor[(slice(None), slice(None), *centre)] = pattern
    return tensor


def idinit_zero_(tensor: torch.Tensor, eps: float = 1e-6, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    r""":math:`\mathrm{IDIZ}_\varepsilon`: the last layer of a residual branch, which would be
    zero to keep the block an identity, gets :math:`\varepsilon` on the IDI pattern instead, so
    the branch's gradients do not vanish (the paper's dead-neuron fix; default
    :math:`\varepsilon = 10^{-6}`). The block stays the identity up to :math:`O(\varepsilon)`."""
    check_range("eps", eps, low=0.0, owner="idinit_zero_")
    return idinit_(tensor, eps, generator=generator)


def idinit(model: nn.Module, *, generator: torch.Generator | None = None,
           select: Selector | None = None, batch=None, scheme: str = "idinit", tau: float = 1.0,
           eps: float = 1e-6) -> InitReport:
    """Model-level IDInit: every selected layer gets :func:`idinit_` and a zero bias; the last
    layer of each residual branch (``module.branch_out`` of blocks such as
    :class:`trainlab.models.resnet.ResidualBlock`) gets :func:`idinit_zero_`."""
    del batch
    last = {id(m.branch_out) for m in model.modules() if isinstance(getattr(m, "branch_out", None),
                                                                     nn.Module)}
    layers = []
    with torch.no_grad():
        for name, module in selected(model, select):
            if id(module) in last:
                idinit_zero_(module.weight, eps)
            else:
                idinit_(module.weight, tau)
            if isinstance(getattr(module, "bias", None), torch.Tensor):
                module.bias.zero_()
            layers.append(LayerInit(name, extra={"residual_last": float(id(module) in last)}))
    return InitReport(scheme, tuple(layers))


INITS.register("idinit", idinit, papers=(19,),
               summary="identity repeated along the longer side (IDI), eps on residual branch ends")
