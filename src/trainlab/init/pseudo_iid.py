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

from trainlab.errors import ConfigError, check_range
from trainlab.init._apply import INITS, InitReport, LayerInit, Selector, fan_in_out, selected
from trainlab.init.mean_field import critical_sigma_w2
from trainlab.init.orthogonal import orthogonal_

STRUCTURES = ("iid", "orthogonal", "low-rank", "sparse")


def pseudo_iid_(tensor: torch.Tensor, sigma_w2: float = 1.0, structure: str = "iid", *,
                rank_fraction: float = 0.25, density: float = 0.25,
                generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Fill ``tensor`` with a pseudo-IID matrix whose entries have variance
    :math:`\sigma_w^2/\text{fan\_in}`, in place.

    Structures (weight viewed as ``(out, fan_in)``):
        ``iid``: Gaussian entries.
        ``orthogonal``: a Haar (semi-)orthogonal matrix times
        :math:`\sqrt{\sigma_w^2 \max(\text{out}, \text{fan\_in}) / \text{fan\_in}}`.
        ``low-rank``: :math:`U V` with Gaussian :math:`U: \text{out} \times r`,
        :math:`V: r \times \text{fan\_in}`, :math:`r = \lceil \text{rank\_fraction}\cdot
        \min\rceil`, entries of :math:`U V` of variance :math:`\sigma_w^2/\text{fan\_in}`.
        ``sparse``: Gaussian entries on a random mask with exactly
        :math:`\lceil \text{density}\cdot\text{fan\_in}\rceil` non-zeros per row (structured:
        every unit has the same in-degree), rescaled by :math:`1/\sqrt{\text{density}}`.

    Deviation: the paper's specific low-rank and sparse constructions were not read; these are
    standard members of the class it covers (exchangeable entries, matched variance).
    """
    check_range("sigma_w2", sigma_w2, low=0.0, owner="pseudo_iid_")
    check_range("rank_fraction", rank_fraction, low=0.0, high=1.0, low_open=True,
                owner="pseudo_iid_")
    check_range("density", density, low=0.0, high=1.0, low_open=True, owner="pseudo_iid_")
    if structure not in STRUCTURES:
        raise ConfigError(f"pseudo_iid_: structure must be one of {STRUCTURES}, got {structure!r}")
    fan_in, _ = fan_in_out(tensor)
    rows = tensor.shape[0]
    std = math.sqrt(sigma_w2 / fan_in)
    f64 = torch.float64
    if structure == "iid":
        w = torch.randn(rows, fan_in, generator=generator, dtype=f64) * std
    elif structure == "orthogonal":
        w = orthogonal_(torch.empty(rows, fan_in, dtype=f64), generator=generator)
        w = w * math.sqrt(sigma_w2 * max(rows, fan_in) / fan_in)
    elif structure == "low-rank":
        r = max(1, math.ceil(rank_fraction * min(rows, fan_in)))
        u = torch.randn(rows, r, generator=generator, dtype=f64)
        v = torch.randn(r, fan_in, generator=generator, dtype=f64)
        w = (u @ v) * (std / math.sqrt(r))
    else:
        k = max(1, math.ceil(density * fan_in))
        scores = torch.rand(rows, fan_in, generator=generator, dtype=f64)
        mask = torch.zeros(rows, fan_in, dtype=f64).scatter_(1, scores.topk(k, dim=1).indices, 1.0)
        w = torch.randn(rows, fan_in, generator=generator, dtype=f64) * mask
        w = w * std * math.sqrt(fan_in / k)
    with torch.no_grad():
        tensor.copy_(w.view_as(tensor).to(tensor.dtype))
    return tensor


def edge_of_chaos(model: nn.Module, *, generator: torch.Generator | None = None,
                  select: Selector | None = None, batch=None, scheme: str = "edge-of-chaos",
                  activation: str = "tanh", sigma_b2: float = 0.05, structure: str = "iid",
                  sigma_w2: float | None = None, rank_fraction: float = 0.25,
                  density: float = 0.25) -> InitReport:
    r"""Initialize every selected layer at the edge of chaos of ``activation``.

    :math:`\sigma_w^2` defaults to :func:`~trainlab.init.mean_field.critical_sigma_w2`
    (``activation``, ``sigma_b2``); weights are :func:`pseudo_iid_` with ``structure``, biases
    :math:`N(0, \sigma_b^2)`. The default ``sigma_b2 = 0.05`` gives tanh :math:`\sigma_w^2
    \approx 1.76` (Schoenholz et al. 2017, Fig. 1 range); ReLU is critical at 2 for any bias.
    """
    del batch
    s2 = critical_sigma_w2(activation, sigma_b2) if sigma_w2 is None else sigma_w2
    layers = []
    with torch.no_grad():
        for name, module in selected(model, select):
            pseudo_iid_(module.weight, s2, structure, rank_fraction=rank_fraction,
                        density=density, generator=generator)
            b = getattr(module, "bias", None)
            if isinstance(b, torch.Tensor):
                b.normal_(0.0, math.sqrt(sigma_b2), generator=generator)
            layers.append(LayerInit(name, extra={"sigma_w2": s2, "sigma_b2": sigma_b2}))
    return InitReport(scheme, tuple(layers))


INITS.register("edge-of-chaos", edge_of_chaos, papers=(111,),
               summary="iid/orthogonal/low-rank/sparse weights at the critical (sigma_w, sigma_b)")
