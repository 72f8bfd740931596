r"""Gradient noise: the simple noise scale, the gradient signal-to-noise ratio and the spread
of per-example gradient norms, from one pass of per-example statistics.

- Gradient noise scale (McCandlish, Kaplan, Amodei et al., "An Empirical Model of
  Large-Batch Training", 2018): :math:`B_{simple} = \mathrm{tr}(\Sigma) / |G|^2`, the batch
  size beyond which larger batches stop paying off. Both terms use the paper's unbiased
  estimators (its appendix A.1) with the small batch of size 1 and the big batch of size
  :math:`n`: :math:`|G|^2 \approx (n\|\bar g\|^2 - \overline{\|g_i\|^2})/(n-1)` and
  :math:`\mathrm{tr}\Sigma \approx n(\overline{\|g_i\|^2} - \|\bar g\|^2)/(n-1)`.
- Mean GSNR (Liu et al., "Understanding Why Neural Networks Generalize Well Through GSNR of
  Parameters", ICLR 2020): per parameter :math:`\bar g_j^2 / \mathrm{Var}_i(g_{ij})`,
  averaged over the parameters with non-zero variance.

Deviations: the paper of McCandlish et al. smooths numerator and denominator with separate
moving averages over steps; this probe reports the per-step terms (``gns/trace_cov``,
``gns/grad_sq``) so a consumer can smooth them, and their per-step ratio. The GSNR skips
parameters whose per-example gradients are all equal (zero variance) instead of adding an
epsilon, so the value does not depend on the parameter scale.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.per_sample import (
    GradStats,
    LinearCapture,
    captured_grad_stats,
    per_sample_grad_stats,
)


def noise_scale_terms(stats: GradStats) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Unbiased estimates ``(tr(Sigma), |G|^2)`` from per-example statistics (n >= 2)."""
    trace_cov, grad_sq, _ = _noise(stats)
    return trace_cov, grad_sq


def mean_gsnr(stats: GradStats) -> torch.Tensor:
    """Mean over parameters of :math:`\\bar g_j^2 / \\mathrm{Var}(g_j)` (population variance),
    over parameters with non-zero variance."""
    return _noise(stats)[2]


def _noise(stats: GradStats) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(tr(Sigma), |G|^2, mean GSNR)`` in few passes over the flat statistics (this runs
    at every step of ``economy``; every tensor op counts): with :math:`S = \\sum_i g_i` and
    :math:`Q = \\sum_i g_i^2`, :math:`n^2\\bar g^2 = S^2` and
    :math:`n^2\\mathrm{Var}_i(g) = nQ - S^2`. Leaves ``stats`` unchanged."""
    n = stats.n
    if stats.flat_sum is not None and stats.flat_sq is not None:
        total, sq = stats.flat_sum, stats.flat_sq
    else:
        total = torch.cat([v.reshape(-1) for v in stats.grad_sum.values()])
        sq = torch.cat([v.reshape(-1) for v in stats.grad_sq_sum.values()])
    s2 = total.square()  # n^2 gbar^2
    g2 = s2.sum()  # n^2 |gbar|^2
    mean_sq = stats.sq_norms.mean()  # mean of |g_i|^2
    trace_cov = torch.sub(mean_sq, g2, alpha=1 / n ** 2).mul_(n / (n - 1))
    grad_sq = torch.sub(g2, mean_sq, alpha=n).mul_(1 / (n * (n - 1)))
    # GSNR over the entries with positive variance. The mask is a float tensor (sign), not
    # a boolean one with torch.where: boolean kernels cost several times more on CPU.
    var = torch.mul(sq, n).sub_(s2)  # n^2 Var
    pos = torch.sign(var).clamp_min_(0)  # 1 where the variance is positive, else 0
    # masked entries give 0 / tiny = 0 (a variance below the smallest normal number counts
    # as that number)
    ratio = s2.mul_(pos).div_(var.clamp_min_(torch.finfo(var.dtype).tiny))
    count = pos.sum(dtype=torch.float64) if pos.numel() > 2 ** 24 else pos.sum()
    return trace_cov, grad_sq, ratio.sum() / count.clamp_min(1)


class GradientNoise(Probe):
    """``gns`` (simple noise scale), ``gns/trace_cov``, ``gns/grad_sq``, ``gsnr`` (mean GSNR)
    and the mean and standard deviation of the per-example gradient norms, on this step's
    batch at the current parameters.

    Attached to a model (:meth:`attach`, as :class:`~trainlab.train.Monitor` does), the
    probe records the inputs and output gradients of the ``nn.Linear`` layers during the
    training step's own forward and backward passes on the steps it is armed for, and
    computes the statistics from them (:func:`~trainlab.probes.per_sample.captured_grad_stats`).
    Otherwise, or when the record cannot be used, it recomputes a forward and backward pass
    (:func:`~trainlab.probes.per_sample.per_sample_grad_stats`). Both give the same numbers
    (up to rounding) when the training loop backpropagated ``loss_fn`` of the batch passed
    to the monitor (a mean over its examples), as the trainer does.

    Args:
        every: cadence.
        max_examples: use at most this many examples of the batch (the first ones).
    """

    name = "grad-noise"

    def __init__(self, every: int = 1, max_examples: int = 4096):
        super().__init__(every)
        check_range("max_examples", max_examples, low=2, owner="grad-noise")
        self.max_examples = max_examples
        self._captures: list[LinearCapture] = []

    def attach(self, model: nn.Module) -> _Attachment | None:
        capture = LinearCapture(model)
        if not capture.modules:
            capture.remove()
            return None
        self._captures.append(capture)
        return _Attachment(self._captures, capture)

    def arm(self, due: bool) -> None:
        for capture in self._captures:
            capture.arm(due)

    def _recorded(self, ctx: ProbeContext) -> GradStats | None:
        capture = next((c for c in self._captures if c.model is ctx.model), None)
        if capture is None:
            return None
        records = capture.take()
        if not records:
            return None
        return captured_grad_stats(ctx.model, records, len(ctx.batch[0]),
                                   examples=self.max_examples, params=ctx.params())

    def measure(self, ctx: ProbeContext) -> Measurement:
        x, y = ctx.batch
        k = self.max_examples
        stats = self._recorded(ctx)
        if stats is None:
            # Probes run after this batch's backward pass and before the update, so p.grad
            # is the mean gradient at these parameters: reuse it (checked) when the whole
            # batch is used instead of summing the per-example gradients again.
            grads = ctx.grads() if len(x) <= k else None
            stats = per_sample_grad_stats(ctx.model, ctx.loss_fn, x[:k], y[:k],
                                          mean_grad=grads)
        if stats.n < 2:
            return {}
        trace_cov, grad_sq, gsnr = _noise(stats)
        norms = stats.sq_norms.sqrt()  # sums of squares: never negative
        return {"gns": trace_cov / grad_sq, "gns/trace_cov": trace_cov, "gns/grad_sq": grad_sq,
                "gsnr": gsnr, "per_sample_grad_norm/mean": norms.mean(),
                "per_sample_grad_norm/std": norms.std()}


class _Attachment:
    """Handle of :meth:`GradientNoise.attach`: ``remove()`` detaches the capture's hooks."""

    def __init__(self, captures: list[LinearCapture], capture: LinearCapture):
        self._captures, self.capture = captures, capture

    def remove(self) -> None:
        self.capture.remove()
        if self.capture in self._captures:
            self._captures.remove(self.capture)


PROBES.register("grad-noise", GradientNoise,
                metrics=("gns", "gsnr", "gns/*", "per_sample_grad_norm/*"),
                plot="log-curves", title="Gradient noise",
                summary="gradient noise scale B_simple, mean GSNR, per-example grad-norm spread")
