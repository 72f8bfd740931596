r"""SGD with gradient-norm clipping (papers.md row 31)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.transforms import TransformOptimizer, clip_by_global_norm


def clipped_sgd(params: Iterable[Any], lr: float = 1e-2, max_norm: float = 1.0, *,
                maximize: bool = False) -> TransformOptimizer:
    r"""SGD on norm-clipped gradients, :math:`\theta \leftarrow \theta - \eta\,g\min(1,
    c/\lVert g\rVert)` with the norm over each param group ("On the difficulty of training
    Recurrent Neural Networks", Pascanu, Mikolov & Bengio, 2013; papers.md row 31). For
    clipping in front of another method compose :func:`~trainlab.optim.transforms.
    clip_by_global_norm` in a chain.

    Deviations from the paper: the threshold ``max_norm = 1`` is this library's default, not
    a value from the paper (whose guidance on choosing it was not checked for this
    paragraph); the norm is over each param group (over the whole gradient when there is one
    group, as in the paper's rescaling rule).
    """
    return TransformOptimizer(params, clip_by_global_norm(max_norm), lr=lr, maximize=maximize)


OPTIMIZERS.register("clipped-sgd", clipped_sgd, papers=(31,),
                    summary="SGD with global gradient-norm clipping (Pascanu et al.)")
