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

    For :math:`\theta \in \mathbb R^{D_{i+1} \times D_i}` (out x in), paper Eq. 3 reads
    :math:`\theta_{m,j} = \tau` if :math:`m \equiv j \pmod{D_i}`, else 0. For a widening or
    square layer (:math:`D_{i+1} \ge D_i`) this is what is filled: the identity is repeated
    down the rows instead of zero-padded as ``torch.nn.init.eye_`` does, so every output unit
    copies an input (full column rank, no unit starts at zero). The rule is the same for 0- and
    1-based indices (shifting ``m`` and ``j`` by one keeps the congruence). For a convolution
    weight ``(out, in, *kernel)`` the channel pattern sits at the kernel centre (a Dirac kernel).

    Args:
        tensor: weight with at least 2 dims, ``(out, in, *kernel)``.
        tau: the value on the pattern; the paper's default is 1.
        generator: accepted for the scheme interface; unused (the fill is deterministic).

    Raises:
        ValueError: ``tensor`` has fewer than 2 dims.

    Provenance (the paper body was not readable here; sources, strongest first):

    * Confirmed from the paper's Fig. 3 caption (quoted on the liner.com review page of
      arXiv 2503.04626): IDInit = :math:`\mathrm{IDI}_\tau` on identity-preserving layers
      plus :math:`\mathrm{IDIZ}_\varepsilon` on the zero-preserving (last) layer of a residual
      stem, with :math:`\tau = 1` and :math:`\varepsilon = 10^{-6}` as the usual values.
    * Confirmed from the abstract: a padded identity-like matrix for non-square weights; the
      rank constraint of the padded identity is handled by training with (momentum) SGD, not by
      the initializer.
    * Second-hand (OpenReview reviews, via ``notes/init-and-phenomena.md`` A4): Eq. 3 above.

    Deviations / assumptions (not confirmed):

    * Narrowing layers (:math:`D_{i+1} < D_i`): Eq. 3 read literally gives
      :math:`[I \; 0]` (inputs beyond :math:`D_{i+1}` dropped). We instead take the modulus
      over :math:`\min(D_{i+1}, D_i)`, tiling the identity along the row so every input reaches
      an output. Whether the paper states a separate rule for this case is unverified.
    * Convolutions: the paper's IDIC "patch-maintain" reshaping (stated to raise feature
      diversity) is not implemented; we use the plain Dirac-centre kernel.
    * The paper's "loosening" (a small perturbation of the identity to add diversity) is not
      implemented.

    Example:
        >>> idinit_(torch.empty(4, 2)).tolist()
        [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
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
    r""":math:`\mathrm{IDIZ}_\varepsilon`, in place: for the zero-preserving last layer of a
    residual stem, which would be all zero to keep the block an identity.

    Confirmed (paper Fig. 3 caption and summary, see :func:`idinit_`): IDIZ sets *specific*
    elements to a small value :math:`\varepsilon` (usually :math:`10^{-6}`) instead of 0, so the
    branch is not dead at the start while the block stays the identity up to
    :math:`O(\varepsilon)`. Assumption (not confirmed): the specific elements are those of the
    IDI pattern of :func:`idinit_`. Raises ``ConfigError`` for ``eps < 0``.
    """
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
