r"""Aligned-MTL: multi-task gradient combination with a condition number of 1 (papers.md row 51).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from trainlab.errors import ConfigError, check_choice


@dataclass(frozen=True)
class AlignedGradients:
    """The result of :func:`aligned_mtl`.

    Attributes:
        direction: the combined update direction :math:`\\hat G w`, shape ``(n,)``.
        aligned: the aligned task gradients :math:`\\hat G`, shape ``(n, T)``.
        task_weights: :math:`B w`, the weight of each original task gradient in
            ``direction`` (``direction = grads @ task_weights``), shape ``(T,)``.
        eigenvalues: the retained eigenvalues of the Gram matrix, descending.
        rank: how many were retained.
    """

    direction: torch.Tensor
    aligned: torch.Tensor
    task_weights: torch.Tensor
    eigenvalues: torch.Tensor
    rank: int


def aligned_mtl(grads: torch.Tensor, weights: torch.Tensor | None = None,
                scale: Literal["min", "median", "rmse"] = "min",
                rtol: float | None = None) -> AlignedGradients:
    r"""Align the task gradients so the linear system they form has condition number 1
    (Senushkin, Patakin, Kuznetsov & Konushin, "Independent Component Alignment for
    Multi-Task Learning", CVPR 2023, Algorithm 1; papers.md row 51).

    With :math:`G = [g_1, \dots, g_T] \in \mathbb R^{n\times T}` (one column per task), the Gram
    matrix :math:`M = G^\top G = V \Lambda V^\top`, and
    :math:`B = \sqrt{\lambda_{\min}}\, V \Lambda^{-1/2} V^\top`, the aligned gradients are
    :math:`\hat G = G B`, so :math:`\hat G^\top \hat G = \lambda_{\min} I`: orthogonal, of equal
    norm :math:`\sqrt{\lambda_{\min}} = \sigma_{\min}(G)`; equivalently, from the SVD
    :math:`G = U \Sigma V^\top`, :math:`\hat G = \sigma_{\min} U V^\top`. The update direction
    is :math:`\hat G w` (``weights`` default: all ones, the authors' choice). Eigenvalues
    below ``rtol * lambda_max`` (default ``T * machine eps``, as in the authors' code) are
    dropped, so with linearly dependent tasks the alignment is done in the span of the
    gradients (``rank < T``). ``scale`` picks the common norm: the smallest singular value
    (the paper), the median or the root-mean-square one.

    Args:
        grads: ``(T, n)`` tensor, one flattened gradient per task (row ``t`` = task ``t``).
        weights: ``(T,)`` task weights.

    Raises:
        ConfigError: on a bad shape, a bad ``scale``, or all-zero gradients.
    """
    if grads.dim() != 2 or grads.shape[0] < 1:
        raise ConfigError(f"aligned_mtl expects grads of shape (T, n) with T >= 1. "
                          f"Got shape {tuple(grads.shape)} instead.")
    check_choice("scale", scale, ("min", "median", "rmse"), owner="aligned_mtl")
    t = grads.shape[0]
    w = torch.ones(t, dtype=grads.dtype, device=grads.device) if weights is None else weights
    if w.shape != (t,):
        raise ConfigError(f"The 'weights' parameter of aligned_mtl must have shape ({t},). "
                          f"Got {tuple(w.shape)} instead.")
    g = grads.T  # (n, T), columns are tasks
    gram = g.T @ g
    lam, vec = torch.linalg.eigh(gram)
    lam, vec = lam.flip(0), vec.flip(1)  # descending
    tol = (t * torch.finfo(grads.dtype).eps if rtol is None else rtol) * lam[0].clamp_min(0)
    keep = lam > tol
    rank = int(keep.sum())
    if rank == 0:
        raise ConfigError("aligned_mtl: every task gradient is zero (Gram matrix of rank 0)")
    lam, vec = lam[keep], vec[:, keep]
    target = {"min": lam[-1], "median": lam.median(), "rmse": lam.mean()}[scale]
    b = (vec * (target.sqrt() / lam.sqrt())) @ vec.T  # sqrt(target) V Lambda^-1/2 V^T
    aligned = g @ b
    return AlignedGradients(direction=aligned @ w, aligned=aligned, task_weights=b @ w,
                            eigenvalues=lam, rank=rank)


def aligned_mtl_gradients(losses: Sequence[torch.Tensor], params: Sequence[torch.Tensor],
                          weights: torch.Tensor | None = None,
                          scale: Literal["min", "median", "rmse"] = "min"
                          ) -> list[torch.Tensor]:
    """Per-parameter Aligned-MTL update direction for the task ``losses`` over the shared
    ``params`` (one backward pass per task, ``p.grad`` untouched). Write it into ``p.grad``
    and call any optimizer's ``step`` to train with Aligned-MTL.

    Deviations from the paper: those of :func:`aligned_mtl` (Algorithm 1 with the authors'
    eigenvalue cut-off and unit task weights; ``scale`` also offers ``"median"`` and ``"rmse"``,
    which are not the paper's). Here the shared parameters' gradients are flattened into one vector
    per task; the paper's encoder-decoder variant, which aligns the gradients of a shared
    representation instead, is not implemented (its details were not re-read for this paragraph).
    """
    if not losses:
        raise ConfigError("aligned_mtl_gradients needs at least one task loss")
    rows = []
    for loss in losses:
        gs = torch.autograd.grad(loss, list(params), retain_graph=True, allow_unused=True)
        rows.append(torch.cat([torch.zeros_like(p).flatten() if x is None else x.flatten()
                               for p, x in zip(params, gs)]))
    direction = aligned_mtl(torch.stack(rows), weights, scale).direction
    out, start = [], 0
    for p in params:
        out.append(direction[start:start + p.numel()].view_as(p))
        start += p.numel()
    return out
