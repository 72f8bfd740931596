r"""Pseudo-IID weights at the edge of chaos ("Beyond IID weights: sparse and low-rank deep
Neural Networks are also Gaussian Processes", Nait Saada, Naderi & Tanner, ICLR 2024,
papers.md row 111).

The paper proves that fully connected and convolutional networks whose weights are iid,
orthogonal, low-rank or structured-sparse ("pseudo-IID") converge to the same Gaussian process
as iid Gaussian networks *with the per-entry variance matched*, so the mean-field edge of chaos
(:mod:`trainlab.init.mean_field`) applies to all of them: scale each structure so that an entry
has variance :math:`\sigma_w^2 / \text{fan\_in}` with the critical :math:`\sigma_w^2`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.errors import check_choice, check_range
from trainlab.init._apply import INITS, InitReport, LayerInit, Selector, fan_in_out, selected
from trainlab.init.mean_field import critical_sigma_w2
from trainlab.init.orthogonal import orthogonal_

STRUCTURES = ("iid", "orthogonal", "low-rank", "sparse")


def _block_bounds(size: int, blocks: int) -> list[int]:
    """Split ``range(size)`` into ``blocks`` contiguous groups as equal as possible."""
    return [round(b * size / blocks) for b in range(blocks + 1)]


def block_mask(rows: int, cols: int, blocks: int, *, dtype: torch.dtype = torch.float64
               ) -> torch.Tensor:
    """Block-diagonal 0/1 mask: rows and columns split into ``blocks`` near-equal groups, group
    ``b`` of the rows connected to group ``b`` of the columns only (a grouped linear layer)."""
    r, c = _block_bounds(rows, blocks), _block_bounds(cols, blocks)
    mask = torch.zeros(rows, cols, dtype=dtype)
    for b in range(blocks):
        mask[r[b]:r[b + 1], c[b]:c[b + 1]] = 1.0
    return mask


def pseudo_iid_(tensor: torch.Tensor, sigma_w2: float = 1.0, structure: str = "iid", *,
                rank_fraction: float = 0.25, density: float = 0.25,
                generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Fill ``tensor`` with a Pseudo-IID matrix of variance :math:`\sigma_w^2`, in place.

    Pseudo-IID (paper Definition 1, via its reviews): row- and column-exchangeable, centred,
    uncorrelated entries with :math:`E[W_{ij}^2] = \sigma_w^2/n` (:math:`n` = fan-in), plus
    moment conditions. Constructions (paper Sec. 3.1/4.1, weight viewed as ``(m, n)``):

    ``iid``: :math:`N(0, \sigma_w^2/n)` entries.
    ``orthogonal``: a Haar (semi-)orthogonal matrix times
    :math:`\sqrt{\sigma_w^2 \max(m, n)/n}`.
    ``low-rank``: :math:`W = U C`, :math:`U \in \mathbb R^{m\times r}` with Haar-random
    orthonormal columns (a random orthonormal basis), :math:`C \in \mathbb R^{r\times n}` iid
    :math:`N(0, \sigma_w^2 m/(r n))`, so :math:`E[W_{ij}^2] = \sigma_w^2/n`;
    :math:`r = \lceil \text{rank\_fraction}\cdot\min(m, n)\rceil` (the paper needs
    :math:`r` proportional to :math:`m`).
    ``sparse`` (structured, permuted block-sparse): :math:`W = P_1 (B \odot C) P_2` with
    :math:`B` the block-diagonal mask of :func:`block_mask` with
    :math:`\mathrm{round}(1/\text{density})` blocks, :math:`C` iid Gaussian of variance
    :math:`\sigma_w^2/(n\,\rho)` (:math:`\rho` = the mask's exact density) and
    :math:`P_1, P_2` uniform random permutations (which make it exchangeable).

    Deviation: the paper's own section 3.1 text was not readable; the low-rank and sparse
    constructions follow its reviews' description ("random orthonormal basis times an iid
    matrix", "randomly permuted masked iid matrix", "permuted block-sparse"). The scalings are
    fixed by :math:`E[W_{ij}^2] = \sigma_w^2/n`, which the tests check entry by entry.
    Searched again for the text: the search tool's "pages" corpus holds ar5iv 2310.16597 and
    the arXiv, Hugging Face and ICLR pages only up to the introduction; the "code" corpus has
    no code by the authors.

    Raises:
        ConfigError: ``sigma_w2 < 0``, ``rank_fraction`` or ``density`` outside ``(0, 1]``,
            unknown ``structure``.
    """
    check_range("sigma_w2", sigma_w2, low=0.0, owner="pseudo_iid_")
    check_range("rank_fraction", rank_fraction, low=0.0, high=1.0, low_open=True,
                owner="pseudo_iid_")
    check_range("density", density, low=0.0, high=1.0, low_open=True, owner="pseudo_iid_")
    check_choice("structure", structure, STRUCTURES, owner="pseudo_iid_")
    fan_in, _ = fan_in_out(tensor)
    rows = tensor.shape[0]
    f64 = torch.float64
    if structure == "iid":
        w = torch.randn(rows, fan_in, generator=generator, dtype=f64) * math.sqrt(sigma_w2 / fan_in)
    elif structure == "orthogonal":
        w = orthogonal_(torch.empty(rows, fan_in, dtype=f64), generator=generator)
        w = w * math.sqrt(sigma_w2 * max(rows, fan_in) / fan_in)
    elif structure == "low-rank":
        r = max(1, math.ceil(rank_fraction * min(rows, fan_in)))
        u = orthogonal_(torch.empty(rows, r, dtype=f64), generator=generator)
        c = torch.randn(r, fan_in, generator=generator, dtype=f64)
        w = (u @ c) * math.sqrt(sigma_w2 * rows / (r * fan_in))
    else:
        blocks = max(1, min(round(1.0 / density), rows, fan_in))
        mask = block_mask(rows, fan_in, blocks)
        rho = mask.mean().item()
        c = torch.randn(rows, fan_in, generator=generator, dtype=f64)
        w = (mask * c) * math.sqrt(sigma_w2 / (fan_in * rho))
        w = w[torch.randperm(rows, generator=generator)][:, torch.randperm(fan_in,
                                                                           generator=generator)]
    with torch.no_grad():
        tensor.copy_(w.view_as(tensor).to(tensor.dtype))
    return tensor


def edge_of_chaos(model: nn.Module, *, generator: torch.Generator | None = None,
                  select: Selector | None = None, batch=None, scheme: str = "edge-of-chaos",
                  activation: str = "tanh", sigma_b2: float = 0.05, structure: str = "iid",
                  sigma_w2: float | None = None, rank_fraction: float = 0.25,
                  density: float = 0.25, first_layer_iid: bool = True) -> InitReport:
    r"""Initialize every selected layer at the edge of chaos of ``activation``.

    :math:`\sigma_w^2` defaults to :func:`~trainlab.init.mean_field.critical_sigma_w2`
    (``activation``, ``sigma_b2``); weights are :func:`pseudo_iid_` with ``structure``, biases
    :math:`N(0, \sigma_b^2)`. The default ``sigma_b2 = 0.05`` gives tanh :math:`\sigma_w^2
    \approx 1.76` (Schoenholz et al. 2017, Fig. 1 range); ReLU is critical at 2 for any bias.
    The paper's theorem assumes an iid Gaussian first layer, so with ``first_layer_iid`` (the
    default) the first selected layer is ``iid`` whatever ``structure`` is.

    Deviations from the paper: the low-rank and sparse structures follow the paper's
    reviews, not its section 3.1 text, which could not be read (see :func:`pseudo_iid_`);
    convolution weights are structured as ``(out, in * prod(kernel))`` matrices, which was
    not checked against the paper's convolutional construction; the default ``sigma_b2 =
    0.05`` is this library's choice (the paper's experimental bias variance was not
    checked); the first layer is iid Gaussian by default, as the paper's theorem assumes.
    """
    del batch
    s2 = critical_sigma_w2(activation, sigma_b2) if sigma_w2 is None else sigma_w2
    layers = []
    with torch.no_grad():
        for i, (name, module) in enumerate(selected(model, select)):
            kind = "iid" if first_layer_iid and i == 0 else structure
            pseudo_iid_(module.weight, s2, kind, rank_fraction=rank_fraction,
                        density=density, generator=generator)
            b = getattr(module, "bias", None)
            if isinstance(b, torch.Tensor):
                b.normal_(0.0, math.sqrt(sigma_b2), generator=generator)
            layers.append(LayerInit(name, extra={"sigma_w2": s2, "sigma_b2": sigma_b2}))
    return InitReport(scheme, tuple(layers))


INITS.register("edge-of-chaos", edge_of_chaos, papers=(111,),
               summary="iid/orthogonal/low-rank/sparse weights at the critical (sigma_w, sigma_b)")
