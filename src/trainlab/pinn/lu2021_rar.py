r"""Residual-based adaptive refinement (RAR) of a PINN's collocation set.

Training alternates with refinement: draw ``candidates`` fresh random points of a loss term
(the PDE's, by default) through the term's own sampler, evaluate the term's residual
:math:`r` there with the current network, and add to the training set the ``count`` points
with the largest :math:`\|r(x)\|`; then go on training on the grown set. The points go where
the network is worst between the collocation points, i.e. where a fixed random set leaves
the solution under-determined (for Burgers' equation: the shock, see ``benchmarks/pinn.py``).
The loss stays the weighted mean of :mod:`trainlab.pinn.task`,
:math:`L = \sum_t \tfrac{\lambda_t}{2}\,\mathrm{mean}_{x \in X_t} |r_t(x)|^2`, over the grown
sets :math:`X_t` (the weights are recomputed: :func:`trainlab.pinn.task.tagged`).

References:
    Lu, Meng, Mao & Karniadakis, "DeepXDE: A deep learning library for solving differential
    equations", SIAM Review 63(1), 2021 (arXiv:1907.04502): its residual-based adaptive
    refinement procedure (Sec. 2; the procedure's number was not re-read) and its Burgers
    example (DeepXDE's ``Burgers_RAR`` demo); not a papers.md row.

Deviations from the paper:
    The paper draws one candidate set and, in DeepXDE's Burgers demo, adds the single point
    of largest residual per round, each round a full training run until the mean residual
    falls below a tolerance. Here each call draws fresh candidates (through the caller's
    generator) and adds ``count`` points, and the caller decides the rhythm (e.g. every few
    Gauss-Newton steps, as ``benchmarks/pinn.py`` does); there is no stopping tolerance.
    Candidates are ranked by the Euclidean norm of the residual row (the paper's
    :math:`|r|` for a scalar PDE).
"""

from __future__ import annotations

import torch

from trainlab.errors import UnknownNameError, check_range
from trainlab.pinn.model import PinnModel
from trainlab.pinn.task import PinnTask, tagged


def largest_residuals(model: PinnModel, index: int, points: torch.Tensor, count: int
                      ) -> torch.Tensor:
    """The ``count`` rows of ``points`` ``(n, d)`` where active term ``index`` of ``model`` has
    the largest residual norm, largest first, ``(count, d)``."""
    check_range("count", count, low=1, high=len(points), owner="largest_residuals")
    with torch.no_grad():
        size = model.term_residual(index, points).norm(dim=1)
    return points[torch.topk(size, int(count)).indices]


def refine(task: PinnTask, model: PinnModel, x: torch.Tensor, count: int, candidates: int,
           generator: torch.Generator | None, term: str = "pde"
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """One RAR round: the tagged collocation rows ``x`` (as ``task.x_train``) with the
    ``count`` of ``candidates`` fresh points of ``term`` where ``model``'s residual is largest
    added.

    Args:
        task: the PINN task (its problem, active terms and loss weights).
        model: the task's :class:`~trainlab.pinn.model.PinnModel` (not modified).
        x: the current tagged rows ``(N, d + 1)``; not modified.
        count: points added, at least 1 and at most ``candidates``.
        candidates: fresh points drawn by the term's sampler and ranked.
        generator: draws the candidates.
        term: the active term refined (default the PDE's).

    Returns:
        ``(x, y)``: the grown rows, grouped by term in the order of ``task.term_names`` (as
        :func:`trainlab.pinn.task.collocation` makes them; each term's old rows keep their
        order, the new points follow them), and their ``[weight, term]`` targets, the
        weights recomputed for the new counts.
    """
    names = list(task.term_names)
    if term not in names:
        raise UnknownNameError("active term of refine", term, names)
    index = names.index(term)
    check_range("candidates", candidates, low=1, owner="refine")
    check_range("count", count, low=1, high=candidates, owner="refine")
    assert task.problem is not None
    new = task.problem.term(term).sample(int(candidates), generator).to(x.dtype)
    chosen = largest_residuals(model, index, new, int(count))
    ids = x[:, -1].round().long()
    points = [x[ids == i, :-1] for i in range(len(names))]
    points[index] = torch.cat([points[index], chosen])
    return tagged(points, names, task.info["weights"])
