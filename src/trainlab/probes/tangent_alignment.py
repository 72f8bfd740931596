r"""Per-layer alignment of tangent features with the labels.

"Feature Learning and Signal Propagation in Deep Neural Networks" (Lou, Mingard, Nam, Hayou,
ICML 2022; papers.md row 76), after Baratin et al. (2021), measures for each layer :math:`l`
how well the tangent kernel of that layer's parameters,
:math:`K_l(x, x') = \sum_c \nabla_{\theta_l} f_c(x) \cdot \nabla_{\theta_l} f_c(x')`, aligns
with the label kernel :math:`YY^T`:
:math:`A_l = \langle K_l, YY^T\rangle_F / (\|K_l\|_F \|YY^T\|_F)`. Across layers the
alignment rises then falls, peaking at a hidden layer (the "alignment hierarchy").

Labels are one-hot codes for class targets and the targets themselves for regression.
Deviation: the kernels are not centred (the papers' "normalized euclidean product"); the
Jacobians are exact (``torch.func.jacrev``), so batches are capped at ``max_examples``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev

from trainlab.errors import check_range
from trainlab.probes._outputs import logits
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.restore import preserved


def label_matrix(targets: torch.Tensor, num_outputs: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot codes for integer class targets, the (2-D) targets otherwise."""
    if not targets.is_floating_point():
        return F.one_hot(targets.long(), num_outputs).to(dtype)
    return targets.reshape(targets.shape[0], -1).to(dtype)


def layer_tangent_kernels(model: nn.Module, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{module name: K_l}`` (n x n tangent kernel of each module's own parameters, summed
    over outputs) for every module that owns trainable parameters."""
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    groups: dict[str, list[str]] = {}
    for n in params:
        groups.setdefault(n.rpartition(".")[0], []).append(n)
    kernels = {}
    with preserved(model):
        for layer, names in groups.items():
            def f(sub: dict[str, torch.Tensor]) -> torch.Tensor:
                out = logits(functional_call(model, ({**params, **sub}, buffers), (inputs,)))
                return out.reshape(out.shape[0], -1)

            jac = jacrev(f)({n: params[n] for n in names})
            j = torch.cat([v.reshape(v.shape[0], v.shape[1], -1) for v in jac.values()], dim=2)
            kernels[layer] = torch.einsum("icp,jcp->ij", j, j)
    return kernels


def alignment(kernel: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """:math:`\\langle K, YY^T\\rangle_F / (\\|K\\|_F \\|YY^T\\|_F)`."""
    yy = labels @ labels.T
    den = kernel.norm() * yy.norm()
    return (kernel * yy).sum() / den if den > 0 else torch.zeros((), dtype=kernel.dtype)


class TangentAlignment(Probe):
    """``tangent_alignment/<layer>`` for every layer with trainable parameters, on the first
    ``max_examples`` examples of this step's batch (model in its current mode)."""

    name = "tangent-alignment"

    def __init__(self, every: int = 1, max_examples: int = 64):
        super().__init__(every)
        check_range("max_examples", max_examples, low=2, owner="tangent-alignment")
        self.max_examples = max_examples

    def measure(self, ctx: ProbeContext) -> Measurement:
        x, y = ctx.batch
        x, y = x[:self.max_examples], y[:self.max_examples]
        kernels = layer_tangent_kernels(ctx.model, x)
        with torch.no_grad(), preserved(ctx.model):
            k = logits(ctx.model(x[:1])).reshape(1, -1).shape[1]
        dtype = next(iter(kernels.values())).dtype
        labels = label_matrix(y, k, dtype)
        return {f"tangent_alignment/{n}": alignment(K, labels) for n, K in kernels.items()}


PROBES.register("tangent-alignment", TangentAlignment, papers=(76,),
                metrics=("tangent_alignment/*",), plot="curves", title="Tangent alignment",
                summary="per-layer alignment of the tangent kernel with the label kernel")
