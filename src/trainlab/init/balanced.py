r"""Balanced initialization of a two-layer network: every hidden neuron's output weights have
the norm of its input weights.

For :math:`f(x) = \sum_j a_j\, \sigma(w_j^T x)` with a positively homogeneous activation
(ReLU, leaky ReLU, identity), gradient flow conserves
:math:`\|w_j\|^2 - \|a_j\|^2` for every neuron. Starting *balanced*,
:math:`\|a_j\| = \|w_j\|`, keeps the two layers of each neuron equally large for the whole
run, the assumption under which the small-initialization analyses of two-layer ReLU networks
hold ("Early Neuron Alignment in Two-layer ReLU Networks with Small Initialization", Min,
Mallada & Vidal, ICLR 2024, papers.md row 27; also Boursier, Pillaud-Vivien & Flammarion
2022). Here

.. math::
    w_j \sim \text{scale}\cdot N(0, I_d/d), \qquad a_j = \|w_j\|\, u_j,

with :math:`u_j` uniform on the unit sphere of the output space: a fair random sign for one
output. Biases are set to zero (the conserved quantity then stays
:math:`\|w_j\|^2 + b_j^2 - \|a_j\|^2 = 0`). Use a small ``scale`` (e.g. 1e-6) for the
small-initialization regime of row 27.

Deviations from the paper: row 27 assumes a balanced start (each neuron's output weight as
large as its input weights) and analyses it; the draw here (input weights ``scale`` times
N(0, I/d), output weights of that norm in a uniform direction, a fair sign for one output)
is this module's choice, as is the default ``scale = 1`` (pass a small one for the paper's
regime). Biases are set to zero, and only exact two-layer networks are accepted. Not checked
against the paper's text for this paragraph: its exact initial distribution and scale.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.errors import ConfigError, check_range
from trainlab.init._apply import INITS, InitReport, LayerInit, Selector, selected


def balanced_(first: torch.Tensor, second: torch.Tensor, scale: float = 1.0, *,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Fill the weights of a two-layer network in place: ``first`` ``(h, d)`` with
    :math:`\text{scale}\cdot N(0, 1/d)` entries and column :math:`j` of ``second``
    ``(k, h)`` with :math:`\|w_j\| u_j`, :math:`u_j` uniform on :math:`S^{k-1}` (for
    :math:`k = 1`, a fair sign).

    Args:
        first: input weights ``(hidden, in)``, filled in place.
        second: output weights ``(out, hidden)``, filled in place.
        scale: overall scale of the input weights, > 0.
        generator: the source of randomness.

    Returns:
        ``(first, second)``.

    Raises:
        ConfigError: ``scale <= 0`` or shapes that do not chain.
    """
    check_range("scale", scale, low=0.0, low_open=True, owner="balanced_")
    if first.dim() != 2 or second.dim() != 2 or second.shape[1] != first.shape[0]:
        raise ConfigError("balanced_: needs first (hidden, in) and second (out, hidden) "
                          f"weights. Got shapes {tuple(first.shape)} and {tuple(second.shape)}.")
    hidden, d = first.shape
    with torch.no_grad():
        first.copy_(scale * torch.randn(first.shape, generator=generator, dtype=first.dtype,
                                        device=first.device) / math.sqrt(d))
        norms = first.norm(dim=1)
        if second.shape[0] == 1:
            signs = torch.randint(0, 2, (hidden,), generator=generator,
                                  device=first.device) * 2 - 1
            second.copy_((signs * norms).unsqueeze(0))
        else:
            u = torch.randn(second.shape, generator=generator, dtype=second.dtype,
                            device=second.device)
            second.copy_(u / u.norm(dim=0, keepdim=True) * norms)
    return first, second


def balanced(model: nn.Module, *, generator: torch.Generator | None = None,
             select: Selector | None = None, batch=None, scheme: str = "balanced",
             scale: float = 1.0) -> InitReport:
    """Model-level :func:`balanced_`: the selected layers (default: Linear and convolution
    layers) must be exactly two, input layer first; their biases are set to zero."""
    del batch  # data-independent
    layers = selected(model, select)
    if len(layers) != 2:
        raise ConfigError("init 'balanced' needs a two-layer network (exactly two selected "
                          f"layers). Got {len(layers)}: {[n for n, _ in layers]}.")
    (n1, m1), (n2, m2) = layers
    balanced_(m1.weight, m2.weight, scale, generator=generator)
    with torch.no_grad():
        for m in (m1, m2):
            if isinstance(getattr(m, "bias", None), torch.Tensor):
                m.bias.zero_()
    return InitReport(scheme, (LayerInit(n1, scale), LayerInit(n2, scale)))


INITS.register("balanced", balanced, papers=(27,),
               summary="two-layer net with ||a_j|| = ||w_j|| per neuron (small-init analyses)")
