r"""Regime adaptation for large-batch training (papers.md row 37)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainlab.errors import check_choice, check_range


@dataclass(frozen=True)
class Regime:
    """A training regime: length in epochs, learning rate, and the epochs at which the
    learning rate drops (``milestones``); ``updates`` = epochs x updates per epoch."""

    epochs: float
    lr: float
    milestones: tuple[float, ...]
    batch_size: int
    updates: float


def adapt_regime(epochs: float, lr: float, small_batch: int, large_batch: int,
                 dataset_size: int, milestones: tuple[float, ...] = (),
                 lr_scaling: str = "sqrt") -> Regime:
    r"""The large-batch regime of Hoffer, Hubara & Soudry ("Train longer, generalize better",
    NeurIPS 2017, section 5; papers.md row 37), from a regime tuned at ``small_batch``.

    With the batch ratio :math:`r = |B_L|/|B_S|`: *regime adaptation* multiplies the number
    of epochs and every learning-rate milestone (in epochs) by :math:`r`, so the large-batch
    run makes the same number of parameter updates, at the same points of the schedule, as the
    small-batch one; the learning rate is scaled by :math:`\sqrt r` (``lr_scaling="sqrt"``,
    the paper's rule, which keeps the covariance of the weight increments as at small batch)
    or by :math:`r` (``"linear"``) or not at all (``"none"``). The other two parts of the
    recipe are :class:`trainlab.models.ghost_batchnorm.GhostBatchNorm` and gradient clipping.

    A schedule written per update (``f(step)`` over ``total_steps``, as in
    :mod:`trainlab.optim.schedules`) needs no change: the adapted run has
    ``Regime.updates`` = the small-batch number of updates.

    Deviations from the paper: only the learning-rate and epoch rescaling of section 5 is computed
    here; ghost batch normalization and gradient clipping, the recipe's other parts, are separate
    (see above), and the ``"linear"`` and ``"none"`` learning-rate options are not the paper's rule.

    Returns:
        the adapted :class:`Regime` (``updates`` counts partial last batches as fractions).
    """
    owner = "adapt_regime"
    check_range("epochs", epochs, low=0.0, low_open=True, owner=owner)
    check_range("lr", lr, low=0.0, owner=owner)
    check_range("small_batch", small_batch, low=1, owner=owner)
    check_range("large_batch", large_batch, low=1, owner=owner)
    check_range("dataset_size", dataset_size, low=1, owner=owner)
    scale = {"sqrt": math.sqrt, "linear": float, "none": lambda r: 1.0}
    check_choice("lr_scaling", lr_scaling, sorted(scale), owner="adapt_regime")
    for m in milestones:
        check_range("milestones", m, low=0.0, high=epochs, owner=owner)
    r = large_batch / small_batch
    new_epochs = epochs * r
    return Regime(epochs=new_epochs, lr=lr * scale[lr_scaling](r),
                  milestones=tuple(m * r for m in milestones), batch_size=large_batch,
                  updates=new_epochs * dataset_size / large_batch)
