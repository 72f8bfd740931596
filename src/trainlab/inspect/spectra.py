"""Singular values of the input-output Jacobian (dynamical isometry) and of the product of a
network's weight matrices, at initialization (Saxe et al. 2014, papers.md row 1; Pennington,
Schoenholz & Ganguli 2017)."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from trainlab.errors import check_range
from trainlab.init._apply import Selector, selected


def jacobian_singular_values(model: nn.Module, inputs: torch.Tensor, max_inputs: int = 8
                             ) -> torch.Tensor:
    """Singular values of ``d model(x) / d x`` for the first ``max_inputs`` inputs (each
    flattened), concatenated and sorted in decreasing order. Parameters, grads and mode are
    not touched (``torch.func``). Isometry means all of them are near 1."""
    check_range("max_inputs", max_inputs, low=1, owner="jacobian_singular_values")
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    xs = inputs[:max_inputs].detach()

    def f(x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (params, buffers), (x.unsqueeze(0),)).reshape(-1)

    jac = vmap(jacrev(f))(xs)  # (n, out, *in)
    jac = jac.reshape(jac.shape[0], jac.shape[1], -1)
    return torch.linalg.svdvals(jac).reshape(-1).sort(descending=True).values


def weight_product_singular_values(model: nn.Module, select: Selector | None = None
                                   ) -> torch.Tensor | None:
    """Singular values of :math:`W_L \\cdots W_1` over the selected fully connected layers in
    module order, or None when their shapes do not chain (e.g. convolutions)."""
    mats = [m.weight.detach() for _, m in selected(model, select)]
    if not mats or any(w.dim() != 2 for w in mats):
        return None
    prod = mats[0].double()
    for w in mats[1:]:
        if w.shape[1] != prod.shape[0]:
            return None
        prod = w.double() @ prod
    return torch.linalg.svdvals(prod)
