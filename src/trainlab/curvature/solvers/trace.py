"""Stochastic trace estimators with standard errors: Hutchinson and Hutch++."""

from __future__ import annotations

import math

import torch

from trainlab.curvature.operators._linear import LinearOperator, as_operator
from trainlab.curvature.solvers.random_vectors import random_probes
from trainlab.curvature.solvers.results import Estimate
from trainlab.errors import check_range


def blocked_matmat(op: LinearOperator, mat: torch.Tensor, block: int) -> torch.Tensor:
    """``op @ mat`` computed ``block`` columns at a time (bounds memory of batched products)."""
    return torch.cat([op.matmat(mat[:, i:i + block]) for i in range(0, mat.shape[1], block)],
                     dim=1)


def _mean_and_stderr(samples: torch.Tensor) -> tuple[float, float]:
    m = samples.numel()
    mean = samples.mean().item()
    if m < 2:
        return mean, float("nan")
    return mean, samples.std(correction=1).item() / math.sqrt(m)


def hutchinson_trace(
    op: LinearOperator | torch.Tensor,
    *,
    num_matvecs: int = 100,
    distribution: str = "rademacher",
    block: int = 16,
    generator: torch.Generator | None = None,
) -> Estimate:
    r"""Hutchinson's estimator :math:`\mathrm{tr}(A) \approx \frac1m \sum_i v_i^\top A v_i`
    with :math:`E[vv^\top] = I` ("A stochastic estimator of the trace of the influence
    matrix for Laplacian smoothing splines", Hutchinson 1989).

    Unbiased; with Rademacher probes its variance is
    :math:`\frac2m(\|A\|_F^2 - \sum_i A_{ii}^2)`. The standard error is the sample standard
    deviation of the ``m`` terms over :math:`\sqrt m`.

    Args:
        op: a symmetric :class:`LinearOperator` or dense tensor.
        num_matvecs: number of probes ``m >= 1`` (one product each).
        distribution: ``"rademacher"`` (default, least variance) or ``"gaussian"``.
        block: probes multiplied at once through ``op.matmat``.
        generator: randomness for the probes.

    Returns:
        :class:`Estimate` (value, stderr, matvecs, the ``m`` terms as ``samples``).
    """
    op = as_operator(op)
    check_range("num_matvecs", num_matvecs, low=1, owner="hutchinson_trace")
    check_range("block", block, low=1, owner="hutchinson_trace")
    probes = random_probes(op.dim, num_matvecs, distribution, generator, op.dtype, op.device)
    samples = (probes * blocked_matmat(op, probes, block)).sum(dim=0)
    value, stderr = _mean_and_stderr(samples)
    return Estimate(value, stderr, num_matvecs, samples)


def hutchpp_trace(
    op: LinearOperator | torch.Tensor,
    *,
    num_matvecs: int = 99,
    distribution: str = "rademacher",
    block: int = 16,
    generator: torch.Generator | None = None,
) -> Estimate:
    r"""Hutch++ ("Hutch++: Optimal Stochastic Trace Estimation", Meyer, Musco, Musco and
    Woodruff, 2021): the trace of a low-rank sketch plus Hutchinson on the rest.

    With :math:`s = \lfloor m/3 \rfloor`: sketch :math:`Q = \mathrm{orth}(AS)` for random
    :math:`S \in \mathbb{R}^{n\times s}`, then
    :math:`\mathrm{tr}(A) \approx \mathrm{tr}(Q^\top A Q) + \frac1{g}\sum_i g_i^\top
    (I-QQ^\top)A(I-QQ^\top) g_i` with the remaining :math:`g = m - 2s` probes. Unbiased
    for any ``Q``; its error decays as :math:`1/m` instead of :math:`1/\sqrt m` for matrices
    with decaying spectra, and it is exact (zero residual, zero stderr) once
    :math:`s \ge \mathrm{rank}(A)`. The standard error is that of the Hutchinson part.

    Args:
        op: a symmetric :class:`LinearOperator` or dense tensor.
        num_matvecs: total products ``m >= 3``.
        distribution: probe distribution, ``"rademacher"`` or ``"gaussian"``.
        block: probes multiplied at once through ``op.matmat``.
        generator: randomness for sketch and probes.

    Returns:
        :class:`Estimate`; ``samples`` are the Hutchinson terms on the deflated operator.
    """
    op = as_operator(op)
    check_range("num_matvecs", num_matvecs, low=3, owner="hutchpp_trace")
    check_range("block", block, low=1, owner="hutchpp_trace")
    s = num_matvecs // 3
    g = num_matvecs - 2 * s
    sketch = random_probes(op.dim, s, distribution, generator, op.dtype, op.device)
    # QR has no half-precision kernel: a half-precision operator's sketch is orthonormalised
    # in float32 and cast back (the products stay in the operator's dtype)
    y = blocked_matmat(op, sketch, block)
    q = (torch.linalg.qr(y.float()).Q.to(y.dtype)
         if y.dtype in (torch.float16, torch.bfloat16) else torch.linalg.qr(y).Q)
    low_rank = (q * blocked_matmat(op, q, block)).sum().item()
    probes = random_probes(op.dim, g, distribution, generator, op.dtype, op.device)
    deflated = probes - q @ (q.T @ probes)
    samples = (deflated * blocked_matmat(op, deflated, block)).sum(dim=0)
    rest, stderr = _mean_and_stderr(samples)
    return Estimate(low_rank + rest, stderr, num_matvecs, samples)
