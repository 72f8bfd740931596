r"""Virgo: GNN initialization from forward and backward variance analysis ("On the
Initialization of Graph Neural Networks", Li, Song, Song & Wipf, ICML 2023, papers.md row 77).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from trainlab.errors import ConfigError, check_choice
from trainlab.init._apply import INITS, InitReport, LayerInit


@dataclass(frozen=True)
class VirgoVariances:
    """Per-layer weight variances (input layer first): forward, backward and their mean."""

    forward: tuple[float, ...]
    backward: tuple[float, ...]
    combined: tuple[float, ...]


def _aggregated_norms(adjacency: torch.Tensor, h: torch.Tensor, layers: int) -> list[float]:
    """``c5_i = ||Â^{i+1} h||^2`` for i = 0 .. layers-1."""
    out, a, h = [], adjacency.double(), h.double()
    for _ in range(layers):
        h = a @ h
        out.append(float((h * h).sum()))
    return out


def virgo_variances(adjacency: torch.Tensor, features: torch.Tensor, widths: list[int],
                    num_classes: int, mean: str = "harmonic") -> VirgoVariances:
    r"""Virgo's per-layer weight variances for a GCN with normalized adjacency ``adjacency``
    (:math:`\hat A`), node ``features`` ``(N, m_in)`` and layer widths
    ``[m_in, m_hid, ..., num_classes]`` (``L = len(widths) - 1`` layers).

    With :math:`c_i = \|\hat A^{i+1} h\|^2`:
    forward (:math:`h` = per-node feature mean): :math:`c^{for}_0 = 2/m_{in}`,
    :math:`c^{for}_i = (2/m_{hid})\, c_{i-1}/c_i`;
    backward (:math:`h = \mathbf 1`): :math:`c^{back}_0 = N/((C-1)\, c_0)`,
    :math:`c^{back}_i = (2/m_{hid})\, c_{i-1}/c_i`, then reversed (it propagates from the
    output); Virgo combines them by the harmonic mean (default) or ``mean="arithmetic"``.

    Checked against the authors' reference code (LspongebobJH/virgo_icml2023 ``utils.py``:
    ``gen_c2_for``, ``gen_c2_back``, ``gen_c2``), which is what the formulas above restate.
    """
    layers = len(widths) - 1
    if layers < 1:
        raise ConfigError("virgo: needs at least one layer (widths of length >= 2)")
    if num_classes < 2:
        raise ConfigError(f"virgo: num_classes must be >= 2, got {num_classes}")
    check_choice("mean", mean, ("harmonic", "arithmetic"), owner="virgo")
    m_in, m_hid = widths[0], widths[1]
    c_for = _aggregated_norms(adjacency, features.double().mean(dim=1), layers)
    n = adjacency.shape[0]
    c_back = _aggregated_norms(adjacency, torch.ones(n, dtype=torch.float64), layers)
    fwd = [2.0 / m_in] + [2.0 / m_hid * c_for[i - 1] / c_for[i] for i in range(1, layers)]
    bwd = [n / ((num_classes - 1) * c_back[0])]
    bwd += [2.0 / m_hid * c_back[i - 1] / c_back[i] for i in range(1, layers)]
    bwd.reverse()
    if mean == "harmonic":
        comb = [2.0 / (1.0 / f + 1.0 / b) for f, b in zip(fwd, bwd)]
    else:
        comb = [(f + b) / 2.0 for f, b in zip(fwd, bwd)]
    return VirgoVariances(tuple(fwd), tuple(bwd), tuple(comb))


def virgo(model: nn.Module, *, batch, generator: torch.Generator | None = None, select=None,
          scheme: str = "virgo", mode: str = "virgo", mean: str = "harmonic") -> InitReport:
    """Model-level Virgo for :class:`trainlab.models.gcn.GCN`: ``batch`` is the node-feature
    matrix; each convolution's weight gets ``U(+-sqrt(3 c2))`` with ``c2`` from
    :func:`virgo_variances` (``mode`` = ``"virgo"``, ``"forward"`` or ``"backward"``); biases are
    left as they are (the reference code does not touch them). ``select`` is ignored.

    Deviations from the paper: the variances follow the authors' reference code (see
    :func:`virgo_variances`), not a re-derivation from the paper's text (not read for this
    paragraph); only GCN-like models (``.adjacency`` and ``.convs``) are supported; biases
    are left as they are and ``select`` is ignored.
    """
    del select
    convs = getattr(model, "convs", None)
    adjacency = getattr(model, "adjacency", None)
    if convs is None or adjacency is None:
        raise ConfigError("init 'virgo' needs a GCN-like model with .adjacency and .convs")
    widths = [convs[0].in_features] + [c.out_features for c in convs]
    var = virgo_variances(adjacency, batch, widths, widths[-1], mean)
    chosen = {"virgo": var.combined, "forward": var.forward, "backward": var.backward}.get(mode)
    if chosen is None:
        raise ConfigError(f"virgo: mode must be virgo, forward or backward, got {mode!r}")
    layers = []
    with torch.no_grad():
        for i, (conv, c2) in enumerate(zip(convs, chosen)):
            bound = math.sqrt(3.0 * c2)
            conv.weight.uniform_(-bound, bound, generator=generator)
            layers.append(LayerInit(f"convs.{i}", extra={"variance": c2}))
    return InitReport(scheme, tuple(layers))


INITS.register("virgo", virgo, papers=(77,), needs_batch=True,
               summary="GNN init: harmonic mean of forward/backward variances through aggregation")
