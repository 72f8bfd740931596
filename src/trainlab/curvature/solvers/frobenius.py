"""Stochastic estimate of the Frobenius norm of a symmetric operator."""

from __future__ import annotations

import math

import torch

from trainlab.curvature.operators._linear import LinearOperator, as_operator
from trainlab.curvature.solvers.random_vectors import random_probes
from trainlab.curvature.solvers.results import Estimate
from trainlab.curvature.solvers.trace import blocked_matmat
from trainlab.errors import check_range


def frobenius_norm(
    op: LinearOperator | torch.Tensor,
    *,
    num_matvecs: int = 100,
    distribution: str = "rademacher",
    block: int = 16,
    generator: torch.Generator | None = None,
) -> Estimate:
    r"""Frobenius norm :math:`\|A\|_F = \sqrt{\mathrm{tr}(A^\top A)}`, from the unbiased
    estimate :math:`\|A\|_F^2 \approx \frac1m\sum_i \|Av_i\|^2` with :math:`E[vv^\top]=I`
    (Hutchinson's estimator applied to :math:`A^\top A`, one product per probe). The
    Frobenius norm of the Hessian enters the linear-stability bounds of "The Implicit
    Regularization of Dynamical Stability in SGD" (2023, papers.md row 30).

    Returns:
        :class:`Estimate` of the norm; its ``samples`` are the squared norms
        :math:`\|Av_i\|^2`, and ``stderr`` is the delta-method standard error
        :math:`\mathrm{se}(\|A\|_F^2) / (2\|A\|_F)`.
    """
    op = as_operator(op)
    check_range("num_matvecs", num_matvecs, low=1, owner="frobenius_norm")
    check_range("block", block, low=1, owner="frobenius_norm")
    probes = random_probes(op.dim, num_matvecs, distribution, generator, op.dtype, op.device)
    samples = blocked_matmat(op, probes, block).square().sum(dim=0)
    sq = samples.mean().item()
    value = math.sqrt(max(sq, 0.0))
    if num_matvecs < 2:
        return Estimate(value, float("nan"), num_matvecs, samples)
    se_sq = samples.std(correction=1).item() / math.sqrt(num_matvecs)
    stderr = se_sq / (2 * value) if value > 0 else 0.0
    return Estimate(value, stderr, num_matvecs, samples)
