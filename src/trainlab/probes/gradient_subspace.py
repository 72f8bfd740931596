r"""Overlap of the gradient with the top Hessian eigenspace.

"Gradient Descent Happens in a Tiny Subspace" (Gur-Ari, Roberts, Dyer, 2018; papers.md
row 28): after a short period of training the gradient lies mostly in the span of the top
:math:`k` Hessian eigenvectors, :math:`k` the number of classes. The overlap is
:math:`\|P_k g\|^2 / \|g\|^2` with :math:`P_k` the projector on that span, computed at the
current parameters on this step's batch (gradient and Hessian of the same loss: under
dropout, of the same fixed draw of the masks, see
:func:`~trainlab.probes.sharpness.step_hessian`).
"""

from __future__ import annotations

import torch
from torch.func import grad

from trainlab.curvature import flatten
from trainlab.errors import check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.hessian_spectrum import top_hessian_eigen
from trainlab.probes.sharpness import step_hessian


def subspace_overlap(g: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """:math:`\\|V^T g\\|^2/\\|g\\|^2` for orthonormal columns ``basis`` (0 for g = 0)."""
    gg = g.dot(g)
    return (basis.T @ g).pow(2).sum() / gg if gg > 0 else torch.zeros((), dtype=g.dtype)


class GradientSubspace(Probe):
    """``grad_subspace_overlap``: fraction of the squared gradient norm in the top-``k``
    Hessian eigenspace (``k`` defaults to the task's number of classes, else 10).

    Deviations from the paper: the gradient and the Hessian are those of this step's batch loss (the
    paper's protocol for them was not re-read for this paragraph); the top-``k`` eigenspace is a
    Lanczos estimate; ``k`` falls back to 10 when the task does not give a number of classes.
    """

    name = "gradient-subspace"

    def __init__(self, every: int = 1, k: int | None = None):
        super().__init__(every)
        if k is not None:
            check_range("k", k, low=1, owner="gradient-subspace")
        self.k = k

    def measure(self, ctx: ProbeContext) -> Measurement:
        k = self.k or getattr(ctx.task, "num_outputs", None) or 10
        op = step_hessian(ctx)
        g = flatten(grad(lambda p: op.loss(p, op.batches[0]))(op.params)).detach()
        if ctx.dist is not None:  # this rank's shard: the global batch's mean gradient
            g = ctx.dist.all_reduce_sum(g.mul(ctx.shard_weight()))
        eig = top_hessian_eigen(ctx, k)
        return {"grad_subspace_overlap": subspace_overlap(g, eig.vectors.to(g.dtype))}


PROBES.register("gradient-subspace", GradientSubspace, ddp="reduced", papers=(28,),
                metrics=("grad_subspace_overlap",),
                plot="curves", title="Gradient in the top Hessian subspace",
                summary="fraction of the gradient in the top-k Hessian eigenspace")
