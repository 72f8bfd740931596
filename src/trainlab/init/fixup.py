r"""Fixup initialization of residual networks (Zhang, Dauphin & Ma, "Fixup Initialization:
Residual Learning Without Normalization", ICLR 2019) and a small-initialization scale option
(the rich/feature-learning regime of papers.md rows 20, 27 and 68)."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.errors import ConfigError, check_range
from trainlab.init._apply import INITS, InitReport, LayerInit, Selector, apply, fan_in_out, selected


def fixup(model: nn.Module, *, generator: torch.Generator | None = None,
          select: Selector | None = None, batch=None, scheme: str = "fixup") -> InitReport:
    r"""Fixup for a network of residual blocks with ``m = 2`` layers per branch (modules with
    ``branch_in`` / ``branch_out``, e.g. :class:`trainlab.models.resnet.ResidualBlock`):

    - ``branch_in``: He normal in fan-out mode, :math:`N(0, 2/\text{fan\_out})`, times
      :math:`L^{-1/(2m-2)} = L^{-1/2}`, :math:`L` = number of residual blocks;
    - ``branch_out``: 0, so every block is the identity and gradients still reach ``branch_in``;
    - the last Linear layer (the classifier): weight and bias 0;
    - other selected layers (the stem): He normal, fan-out; biases 0.

    Fixup's scalar biases (0) and multipliers (1) are the blocks' own parameters and are reset
    here too. Defaults follow the authors' CIFAR ResNet (hongyi-zhang/Fixup
    ``fixup_resnet_cifar.py``).
    """
    del batch
    blocks = [m for m in model.modules() if isinstance(getattr(m, "branch_in", None), nn.Module)
              and isinstance(getattr(m, "branch_out", None), nn.Module)]
    if not blocks:
        raise ConfigError("init 'fixup' needs residual blocks exposing branch_in / branch_out")
    depth_factor = len(blocks) ** -0.5
    roles: dict[int, str] = {}
    for b in blocks:
        roles[id(b.branch_in)] = "branch_in"
        roles[id(b.branch_out)] = "branch_out"
    chosen = selected(model, select)
    linears = [m for _, m in chosen if isinstance(m, nn.Linear) and id(m) not in roles]
    if linears:
        roles.setdefault(id(linears[-1]), "classifier")
    layers = []
    with torch.no_grad():
        for b in blocks:
            for name in ("bias1a", "bias1b", "bias2a", "bias2b"):
                if isinstance(getattr(b, name, None), torch.Tensor):
                    getattr(b, name).zero_()
            if isinstance(getattr(b, "scale", None), torch.Tensor):
                b.scale.fill_(1.0)
        for name, module in chosen:
            role = roles.get(id(module), "other")
            _, fan_out = fan_in_out(module.weight)
            if role in ("branch_out", "classifier"):
                module.weight.zero_()
            else:
                factor = depth_factor if role == "branch_in" else 1.0
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_out) * factor, generator=generator)
            if isinstance(getattr(module, "bias", None), torch.Tensor):
                module.bias.zero_()
            layers.append(LayerInit(name, scale=depth_factor if role == "branch_in" else 1.0))
    return InitReport(scheme, tuple(layers))


def small(model: nn.Module, *, generator: torch.Generator | None = None,
          select: Selector | None = None, batch=None, scheme: str = "small",
          base: str = "kaiming-normal", scale: float = 1e-2, **hyper) -> InitReport:
    r"""Initialize with the scheme ``base`` (with ``hyper``), then multiply every selected
    weight by ``scale`` (default :math:`10^{-2}`): the small-initialization ("rich") regime in
    which gradient descent learns greedily low-rank solutions (matrix sensing, papers.md row 20),
    neurons align early to data directions (row 27) and weights move far from init (row 68).
    Biases are scaled too.

    Deviations from the paper: rows 20, 27 and 68 each study small initialization in their
    own model, with their own scale and distribution; this is a generic scheme (any base
    scheme times ``scale``, biases scaled too) whose default ``scale = 1e-2`` is this
    library's choice, not any of the papers' values. The papers' settings are in the
    phenomena that reproduce them.
    """
    check_range("scale", scale, low=0.0, low_open=True, owner="small")
    report = apply(model, base, batch=batch, generator=generator, select=select, **hyper)
    with torch.no_grad():
        for _, module in selected(model, select):
            module.weight.mul_(scale)
            if isinstance(getattr(module, "bias", None), torch.Tensor):
                module.bias.mul_(scale)
    return InitReport(scheme, tuple(LayerInit(r.name, r.scale * scale, r.iterations, r.converged,
                                              r.extra) for r in report.layers))


INITS.register("fixup", fixup,
               summary="Fixup: branch ends 0, branch starts He/sqrt(L), classifier 0 (no norm)")
INITS.register("small", small, papers=(20, 27, 68),
               summary="any base scheme times a small scale (rich / feature-learning regime)")
