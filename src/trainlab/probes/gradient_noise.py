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

Under BatchNorm in training mode the examples of a batch are coupled by the batch
statistics and per-example gradients are undefined. The probe then falls back (with a note
in the run record and a warning) to the paper's two-batch-size estimate (its appendix A.1,
:func:`two_batch_noise`): the squared norms of the mean gradients of ``k`` disjoint
sub-batches of size :math:`b` and of their union (size :math:`B = kb`) give
:math:`|G|^2 \approx (B|G_B|^2 - b|G_b|^2)/(B - b)` and
:math:`\mathrm{tr}\Sigma \approx (|G_b|^2 - |G_B|^2)/(1/b - 1/B)`, each gradient taken as
training would at that batch size (BatchNorm normalizing with that batch's statistics). It
reports ``gns``, ``gns/trace_cov``, ``gns/grad_sq`` and their standard errors from the
spread over the sub-batches; the GSNR and the per-example norms need per-example gradients
and are not reported.

Deviations: the paper of McCandlish et al. smooths numerator and denominator with separate
moving averages over steps; this probe reports the per-step terms (``gns/trace_cov``,
``gns/grad_sq``) so a consumer can smooth them, and their per-step ratio. The GSNR skips
parameters whose per-example gradients are all equal (zero variance) instead of adding an
epsilon, so the value does not depend on the parameter scale. In the two-batch fallback the
standard errors count the spread of the small batches only (the big batch is one draw).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from trainlab.errors import ConfigError, check_range
from trainlab.log import warn_once
from trainlab.module_tree import ModuleTree
from trainlab.probes import fused
from trainlab.probes._outputs import batch_size, take
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.noise_plan import NoisePlan
from trainlab.probes.per_sample import (
    BatchNormWatch,
    FlatBuffers,
    GradStats,
    LinearCapture,
    Pending,
    RawRecords,
    Records,
    _Layout,
    _linear_layout,
    captured_grad_stats,
    per_sample_grad_stats,
    records_of,
)
from trainlab.restore import preserved


def noise_scale_terms(stats: GradStats) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Unbiased estimates ``(tr(Sigma), |G|^2)`` from per-example statistics (n >= 2)."""
    trace_cov, grad_sq, _ = _noise(stats)
    return trace_cov, grad_sq


def mean_gsnr(stats: GradStats) -> torch.Tensor:
    """Mean over parameters of :math:`\\bar g_j^2 / \\mathrm{Var}(g_j)` (population variance),
    over parameters with non-zero variance."""
    return _noise(stats)[2]


NOISE_BLOCK = 65536
"""Entries per block of :func:`_noise`'s elementwise work (three float32 blocks, 768 KiB,
stay in a core's L2 cache from one operation to the next)."""


def _noise(stats: GradStats, scratch: FlatBuffers | None = None
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(tr(Sigma), |G|^2, mean GSNR)`` from the flat statistics (this runs at every step
    of ``economy``; every memory pass counts): with :math:`S = \\sum_i g_i` and
    :math:`Q = \\sum_i g_i^2`, :math:`n^2\\bar g^2 = S^2` and
    :math:`n^2\\mathrm{Var}_i(g) = nQ - S^2`; the GSNR is the mean of :math:`S^2 / (nQ - S^2)`
    over the entries where :math:`nQ - S^2 > 0` (a variance below the smallest normal
    number counts as that number).

    The elementwise work runs block by block (:data:`NOISE_BLOCK` entries), so that its
    operations read and write a block while it is in cache instead of passing over
    the whole vectors each time, and each block's sums are taken while it is there (no
    pass over a whole vector after): a vector of one block gives the numbers of
    whole-vector operations, to the bit; a longer one the sums of :func:`_total` (block
    sums added in float64: within 1e-6 of the exact sums, tested; the whole-vector sums
    they replace differ from them in the last bits), and the count of positive variances,
    a sum of exact integers, is exact either way. Leaves ``stats`` unchanged, except when
    ``scratch`` holds its flat vectors (the probe's own
    :class:`~trainlab.probes.per_sample.FlatBuffers`, read by nothing after this): the
    work is then done in place there, allocating nothing, and the work a deferred
    :func:`~trainlab.probes.per_sample.captured_grad_stats` left in ``scratch`` (the known
    gradients times ``n``, the scale factors) is done block by block first, so that no
    whole-vector pass is spent on it; with several blocks, :math:`nQ` and the ratios are
    formed in ``scratch.block`` and the sums of squares are only read. The numbers that
    multiply its own vectors come as 0-d tensors (:meth:`FlatBuffers.scalar
    <trainlab.probes.per_sample.FlatBuffers.scalar>`: the same numbers, fewer dispatched
    operations)."""
    n = stats.n
    own = (scratch is not None and stats.flat_sum is scratch.sum
           and stats.flat_sq is scratch.sq)
    pending, sq_factor = scratch.take_pending() if own and scratch is not None else ([], 1)
    num = scratch.scalar if own and scratch is not None else _number
    if own and scratch is not None:
        fast = _fused_noise(stats, pending, sq_factor)
        if fast is not None:  # one pass in C (trainlab.probes.fused: its tolerance)
            return fast
        s2, sq, ratio = stats.flat_sum, stats.flat_sq, scratch.mask
        var = sq
    else:
        if stats.flat_sum is not None and stats.flat_sq is not None:
            total, sq = stats.flat_sum, stats.flat_sq
        else:
            total = torch.cat([v.reshape(-1) for v in stats.grad_sum.values()])
            sq = torch.cat([v.reshape(-1) for v in stats.grad_sq_sum.values()])
        s2 = total.square()
        var = ratio = sq
    size = s2.numel()
    # block counts add up exactly: integers below 2^24 in float32, in float64 above (as a
    # whole-vector sum would); other dtypes count in one block
    exact = var.dtype in (torch.float32, torch.float64)
    block = NOISE_BLOCK if exact else max(size, 1)
    tiny = torch.finfo(var.dtype).tiny
    if size > block:  # nQ and the ratios formed in two blocks of scratch: sq only read
        spare = scratch.block if scratch is not None else sq.new_empty(0)
        if (spare.numel() < 2 * block or spare.dtype != sq.dtype
                or spare.device != sq.device):
            spare = sq.new_empty(2, block)
            if scratch is not None:
                scratch.block = spare
        spare_v, spare_r = spare[0], spare[1]
    elif not own:
        var, ratio = torch.mul(sq, n), torch.empty_like(sq)
    counts, g2_parts, ratio_parts = [], [], []
    for i in range(0, size, block):
        j = min(i + block, size)
        if size <= block:
            s, r, v = s2, ratio, var
            if own:
                for item in pending:
                    item.apply(s2, i, j, num(item.factor))
                s.mul_(s)  # n^2 gbar^2 (square_ is pow_ with a Python 2: same bits)
                if sq_factor != 1:
                    v.mul_(num(sq_factor))
                v.mul_(num(n))
        else:
            s, r, v = s2[i:j], spare_r[:j - i], spare_v[:j - i]
            if own:
                for item in pending:
                    item.apply(s2, i, j, num(item.factor))
                s.mul_(s)
            if sq_factor != 1:
                torch.mul(sq[i:j], num(sq_factor), out=v).mul_(num(n))
            else:
                torch.mul(sq[i:j], num(n), out=v)
        v.sub_(s)  # n^2 Var
        torch.gt(v, num(0), out=r)  # 1 where the variance is positive, else 0 (a float
        # mask: boolean kernels cost several times more on CPU)
        counts.append(r.sum(dtype=torch.float64) if size > 2 ** 24 else r.sum())
        r.mul_(s).div_(v.clamp_min_(tiny))  # masked entries: 0 / tiny = 0
        g2_parts.append(s.sum())
        ratio_parts.append(r.sum())
    count = (counts[0] if len(counts) == 1 else torch.stack(counts).sum()) if counts else (
        ratio.sum())
    return _terms(stats, _total(g2_parts, s2), _total(ratio_parts, s2), count, num)


def _terms(stats: GradStats, g2: torch.Tensor, ratios: torch.Tensor, count: torch.Tensor,
           num: Callable[[float], torch.Tensor | float]
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""``(tr(Sigma), |G|^2, mean GSNR)`` from :math:`n^2\|\bar g\|^2` (``g2``, in the
    statistics' dtype), the sum of the ratios and their count."""
    n = stats.n
    mean_sq = stats.sq_norms.mean()  # mean of |g_i|^2
    tail = num if mean_sq.dtype == g2.dtype else _number
    trace_cov = torch.sub(mean_sq, g2, alpha=1 / n ** 2).mul_(tail(n / (n - 1)))
    grad_sq = torch.sub(g2, mean_sq, alpha=n).mul_(tail(1 / (n * (n - 1))))
    return trace_cov, grad_sq, ratios / count.clamp_min(1)


def _fused_noise(stats: GradStats, pending: list[Pending], sq_factor: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """:func:`_noise` for the probe's own flat vectors in one pass in C, the deferred work
    ``pending`` and ``sq_factor`` included (:func:`trainlab.probes.fused.gsnr_sums`: the
    same operations per element, the sums in float64), and the three results formed from
    those sums and the mean of ``stats.sq_norms`` in float64, each rounded once to the
    dtype of the eager path's results (within :data:`trainlab.probes.fused.RTOL` of the
    terms they are differences of: tested); None where that path does not apply."""
    flat_sum, flat_sq = stats.flat_sum, stats.flat_sq
    if flat_sum is None or flat_sq is None or stats.n < 2:  # (n < 2: the eager path's inf)
        return None
    segments, end = [], 0
    for item in pending:
        if (item.offset < end or (item.source is not None and (
                item.source.numel() != item.size or not item.source.is_contiguous()))):
            return None  # overlapping, or a source that is not one flat run of entries
        segments.append((item.offset, item.size, item.source, item.factor))
        end = item.offset + item.size
    sums = fused.gsnr_sums(flat_sum, flat_sq, segments, sq_factor, stats.n)
    if sums is None:
        return None
    g2, ratios, count = sums  # n^2 |gbar|^2, the sum of the ratios, their count
    n = stats.n
    mean_sq = math.fsum(stats.sq_norms.tolist()) / stats.sq_norms.numel()
    dtype = torch.promote_types(stats.sq_norms.dtype, flat_sum.dtype)
    trace_cov, grad_sq, gsnr = torch.tensor([(mean_sq - g2 / n ** 2) * n / (n - 1),
                                             (g2 - mean_sq * n) / (n * (n - 1)),
                                             ratios / max(count, 1)], dtype=dtype).unbind()
    if flat_sum.numel() > 2 ** 24:  # the eager path counts in float64 there
        gsnr = torch.tensor(ratios / max(count, 1), dtype=torch.float64)
    return trace_cov, grad_sq, gsnr


def _spread(sq_norms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of the per-example norms as 0-d tensors: those of
    :func:`trainlab.probes.fused.norm_spread` (the numbers of the planned path, to the
    bit) where the fused path takes them, else by torch's operations (the eager path's
    numbers, as before it)."""
    spread = fused.norm_spread(sq_norms) if sq_norms.is_cpu else None
    if spread is not None:
        return torch.tensor(spread, dtype=sq_norms.dtype).unbind()
    norms = sq_norms.sqrt()  # sums of squares: never negative
    return norms.mean(), norms.std()


def _number(value: float) -> float:
    """A number as an operand, as it is (:func:`_noise` on vectors it does not own)."""
    return value


def _total(parts: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """The sum of a vector from the sums of its blocks: the one block's sum (that of the
    whole vector, to the bit), else the block sums added in float64 and rounded once to
    ``like``'s dtype: not the bits of one sum over the whole vector (torch's sum orders
    the terms its own way), but as close to the exact sum (tested to 1e-6 against a
    float64 sum of the same terms at 2M entries); an empty vector's 0."""
    if not parts:
        return like.new_zeros(())
    if len(parts) == 1:
        return parts[0]
    return torch.stack(parts).sum(dtype=torch.float64).to(like.dtype)


def gathered_stats(stats: GradStats, dist: Any) -> GradStats:
    """The statistics of the global batch from each rank's (data-parallel training, ``dist``
    a :class:`~trainlab.train.distributed.Distributed`): counts and gradient sums summed over
    the ranks, per-example squared norms gathered in rank order. Each rank's sums are those
    of its shard's examples (per-example gradients of one example do not depend on the other
    examples without BatchNorm), so the result equals one process's on the global batch."""
    names = list(stats.grad_sum)
    flat = torch.cat([torch.cat([stats.grad_sum[n].reshape(-1) for n in names]),
                      torch.cat([stats.grad_sq_sum[n].reshape(-1) for n in names]),
                      torch.tensor([float(stats.n)], dtype=stats.sq_norms.dtype,
                                   device=stats.sq_norms.device)])
    flat = dist.all_reduce_sum(flat.to(stats.sq_norms.dtype))
    half = (flat.numel() - 1) // 2
    grad_sum, grad_sq_sum, offset = {}, {}, 0
    for name in names:
        size, shape = stats.grad_sum[name].numel(), stats.grad_sum[name].shape
        grad_sum[name] = flat[offset:offset + size].view(shape)
        grad_sq_sum[name] = flat[half + offset:half + offset + size].view(shape)
        offset += size
    return GradStats(int(flat[-1].item()), dist.all_gather_cat(stats.sq_norms), grad_sum,
                     grad_sq_sum, stats.method, stats.reused_mean, flat[:half],
                     flat[half:2 * half])


@dataclass(frozen=True)
class TwoBatchNoise:
    r"""The two-batch-size estimates of :func:`two_batch_noise`: ``trace_cov``
    (:math:`\mathrm{tr}\Sigma`), ``grad_sq`` (:math:`|G|^2`), their standard errors, and
    the batch sizes ``small`` (:math:`b`) and ``big`` (:math:`B`)."""

    trace_cov: torch.Tensor
    grad_sq: torch.Tensor
    trace_cov_stderr: torch.Tensor
    grad_sq_stderr: torch.Tensor
    small: int
    big: int


def _rows(x: Any, i: int, j: int) -> Any:
    if x is None:
        return None
    return tuple(_rows(t, i, j) for t in x) if isinstance(x, tuple) else x[i:j]


def two_batch_noise(model: nn.Module, loss_fn: Callable[[Any, Any], torch.Tensor],
                    inputs: Any, targets: Any, *, groups: int = 4) -> TwoBatchNoise:
    r"""Gradient noise terms from gradients at two batch sizes ("An Empirical Model of
    Large-Batch Training", McCandlish, Kaplan, Amodei et al. 2018, appendix A.1): with
    :math:`b = \lfloor n/k \rfloor` for ``k = groups`` and :math:`B = kb`, the mean
    gradients :math:`G_{b,j}` of the ``k`` consecutive sub-batches of size :math:`b` and
    :math:`G_B` of their union, and :math:`\overline{|G_b|^2}` the mean of the
    :math:`|G_{b,j}|^2`,

    .. math:: |G|^2 \approx \frac{B|G_B|^2 - b\overline{|G_b|^2}}{B - b},\qquad
              \mathrm{tr}\Sigma \approx \frac{\overline{|G_b|^2} - |G_B|^2}{1/b - 1/B}

    (unbiased when :math:`E|G_b|^2 = |G|^2 + \mathrm{tr}\Sigma/b`). Valid where per-example
    gradients are not: each gradient is that of ``loss_fn(model(x), y)`` on that batch in
    the model's current mode (BatchNorm in training mode uses that batch's statistics, as
    training at batch size :math:`b` would). The model is left as found (buffers are
    copies; mode, grads and the global RNG are restored). Averaged over the ways of
    splitting the batch, the estimates equal the per-example ones of
    :func:`noise_scale_terms` on a model without BatchNorm.

    Args:
        groups: ``k >= 2`` sub-batches (clipped to ``n // 2`` so that ``b >= 2``).

    Returns:
        :class:`TwoBatchNoise`; the standard errors come from the spread of the
        :math:`|G_{b,j}|^2` (the one big batch adds an error not counted).
    """
    check_range("groups", groups, low=2, owner="two_batch_noise")
    n = batch_size(inputs)
    k = min(groups, n // 2)
    if k < 2:
        raise ConfigError(f"two_batch_noise needs at least 4 examples (two sub-batches of 2); "
                          f"got {n}.")
    b = n // k
    big = k * b
    named = {name: p for name, p in model.named_parameters() if p.requires_grad}
    with preserved(model):
        def sq_norm(x: Any, y: Any) -> torch.Tensor:
            leaves = {name: p.detach().requires_grad_(True) for name, p in named.items()}
            buffers = {name: t.detach().clone() for name, t in model.named_buffers()}
            with torch.enable_grad():
                out = functional_call(model, ({**leaves}, buffers),
                                      x if isinstance(x, tuple) else (x,))
                grads = torch.autograd.grad(loss_fn(out, y), list(leaves.values()),
                                            allow_unused=True)
            return sum(g.detach().double().pow(2).sum() for g in grads if g is not None)

        s_big = sq_norm(_rows(inputs, 0, big), _rows(targets, 0, big))
        s_small = torch.stack([sq_norm(_rows(inputs, j * b, (j + 1) * b),
                                       _rows(targets, j * b, (j + 1) * b)) for j in range(k)])
    mean_small = s_small.mean()
    se = s_small.std(correction=1) / k ** 0.5
    trace_cov = (mean_small - s_big) / (1 / b - 1 / big)
    grad_sq = (big * s_big - b * mean_small) / (big - b)
    return TwoBatchNoise(trace_cov, grad_sq, se / (1 / b - 1 / big), b * se / (big - b), b,
                         big)


class GradientNoise(Probe):
    """``gns`` (simple noise scale), ``gns/trace_cov``, ``gns/grad_sq``, ``gsnr`` (mean GSNR)
    and the mean and standard deviation of the per-example gradient norms, on this step's
    batch at the current parameters.

    Attached to a model (:meth:`attach`, as :class:`~trainlab.train.Monitor` does), the
    probe records the inputs and output gradients of the ``nn.Linear`` layers during the
    training step's own forward and backward passes on the steps it is armed for, and
    computes the statistics from them (:func:`~trainlab.probes.per_sample.captured_grad_stats`).
    In one process with the whole batch used, the measurement runs on a plan kept from
    step to step (:class:`~trainlab.probes.noise_plan.NoisePlan`: scratch, views and the
    C calls' pointer arrays built once per layout, batch size and dtype; the general
    path's numbers to the bit, its values Python floats rather than 0-d tensors).
    Otherwise, or when the record cannot be used, it recomputes a forward and backward pass
    (:func:`~trainlab.probes.per_sample.per_sample_grad_stats`). Both give the same numbers
    (up to rounding) when the training loop backpropagated ``loss_fn`` of the batch passed
    to the monitor (a mean over its examples), as the trainer does.

    With BatchNorm in training mode it falls back to :func:`two_batch_noise` (module
    docstring), says so in the run record (``ctx.note``), and reports ``gns``,
    ``gns/trace_cov``, ``gns/grad_sq`` with ``gns/trace_cov_stderr`` and
    ``gns/grad_sq_stderr``.

    Args:
        every: cadence.
        max_examples: use at most this many examples of the batch (the first ones).
        groups: sub-batches of the two-batch fallback (default 4).
    """

    name = "grad-noise"
    uses_generator = False  # (no path draws from ctx.generator: tested)

    def __init__(self, every: int = 1, max_examples: int = 4096, groups: int = 4):
        super().__init__(every)
        check_range("max_examples", max_examples, low=2, owner="grad-noise")
        check_range("groups", groups, low=2, owner="grad-noise")
        self.max_examples, self.groups = max_examples, groups
        self._captures: list[LinearCapture] = []
        self._buffers = FlatBuffers()  # the captured statistics' flat vectors, reused
        self._plan: tuple[tuple[Any, ...], NoisePlan | None] | None = None  # key, plan
        self._batchnorm = BatchNormWatch()  # training_batchnorm, walked on change only
        # (the params dict, the monitor's tree generation, the layout) of the last planned step
        self._layout: tuple[dict[str, torch.Tensor], int, _Layout | None] | None = None

    def attach(self, model: nn.Module) -> _Attachment | None:
        capture = LinearCapture(model)
        if not capture.modules:
            capture.remove()
            return None
        self._captures.append(capture)
        return _Attachment(self, capture)

    def arm(self, due: bool) -> None:
        for capture in self._captures:
            capture.arm(due)

    def pause(self) -> None:
        for capture in self._captures:
            capture.pause()

    def _recorded(self, ctx: ProbeContext, records: Records | None,
                  examples: int | None = None) -> GradStats | None:
        if not records:
            return None
        # deferred: the last passes over the sums are done by _noise, block by block (not
        # under data-parallel training, where the sums are reduced across ranks first)
        return captured_grad_stats(ctx.model, records, batch_size(ctx.batch[0]),
                                   examples=examples or self.max_examples,
                                   params=ctx.params(), buffers=self._buffers,
                                   deferred=ctx.dist is None)

    def _taken(self, ctx: ProbeContext) -> RawRecords | None:
        """What the capture of ``ctx.model`` recorded (then forgotten), as its hooks kept it
        (:meth:`~trainlab.probes.per_sample.LinearCapture.take_raw`), or None."""
        for capture in self._captures:
            if capture.model is ctx.model:
                return capture.take_raw()
        return None

    def _planned(self, ctx: ProbeContext, records: RawRecords, tree: ModuleTree | None = None
                 ) -> Measurement | None:
        """The measurement on this probe's :class:`~trainlab.probes.noise_plan.NoisePlan`
        (built when the layout, batch size or dtype changed), when every example is used
        in one process; None where the plan does not apply (the general path then runs on
        the same records). ``tree``: as for :meth:`_layout_of`."""
        n = batch_size(ctx.batch[0])
        if ctx.dist is not None or n > self.max_examples:
            return None
        params = ctx.params()
        layout = self._layout_of(ctx, params, tree)
        if layout is None or not layout.owners:
            return None
        key = (layout, n, params[next(iter(layout.owners))].dtype)
        plan = self._plan
        if plan is None or plan[0] != key:
            plan = self._plan = (key, NoisePlan.build(layout, n, key[2]))
        if plan[1] is None:
            warn_once("grad-noise:no-plan",
                      "grad-noise: no kept plan for this model (a layer's weight frozen or of "
                      "another dtype or device, fewer than 2 examples, or the C sums off): "
                      "the general path runs (same numbers, slower)")
            return None
        out = plan[1].measure(records)
        if out is None:
            warn_once("grad-noise:plan-refused",
                      "grad-noise: the captured records do not fit the kept plan (a layer "
                      "missing or recorded twice, autocast, inputs with extra dimensions, "
                      "non-contiguous tensors): the general path runs for such steps (same "
                      "numbers, slower)")
        return out

    def _layout_of(self, ctx: ProbeContext, params: dict[str, torch.Tensor],
                   tree: ModuleTree | None) -> _Layout | None:
        """:func:`~trainlab.probes.per_sample._linear_layout` of ``ctx.model``; inside a
        monitor not asked again while the monitor's tree keeps its generation and ``params``
        is the same dict (the monitor keeps it while the trainable parameters' names,
        objects and storage stay: what the layout's own cache compares). ``tree``: the
        monitor's tree of ``ctx.model`` (:func:`_monitor_tree`), None outside a monitor."""
        kept = self._layout
        if (tree is not None and kept is not None and kept[0] is params
                and kept[1] == tree.generation):
            return kept[2]
        layout = _linear_layout(ctx.model, params)
        self._layout = None if tree is None else (params, tree.generation, layout)
        return layout

    def measure(self, ctx: ProbeContext) -> Measurement:
        x, y = ctx.batch
        k = self.max_examples
        tree = _monitor_tree(ctx)
        if self._batchnorm(ctx.model, tree):
            if ctx.dist is not None:
                for capture in self._captures:
                    capture.take_raw()
                return ctx.skip(self.name, "BatchNorm in training mode under data-parallel "
                                "training: each rank normalizes with its own shard, so no "
                                "estimate of the global batch applies")
            return self._two_batch(ctx, take(x, k), take(y, k))
        if ctx.dist is not None and ctx.examples() > k:
            k = max(1, k // ctx.dist.world_size)
            ctx.note(self.name, f"data-parallel training: the first {k} examples of each "
                     f"rank's shard (max_examples={self.max_examples} over "
                     f"{ctx.dist.world_size} ranks), not the first {self.max_examples} of "
                     f"the global batch")
        raw = self._taken(ctx)
        if raw:
            planned = self._planned(ctx, raw, tree)
            if planned is not None:
                return planned
        stats = self._recorded(ctx, None if raw is None else records_of(raw), k)
        if stats is None:
            # Probes run after this batch's backward pass and before the update, so p.grad
            # is the mean gradient at these parameters: reuse it (checked) when the whole
            # batch is used instead of summing the per-example gradients again (not under
            # data-parallel training: p.grad is then the global batch's, averaged by DDP).
            grads = ctx.grads() if batch_size(x) <= k and ctx.dist is None else None
            stats = per_sample_grad_stats(ctx.model, ctx.loss_fn, take(x, k), take(y, k),
                                          mean_grad=grads)
        if ctx.dist is not None:
            stats = gathered_stats(stats, ctx.dist)
        if stats.n < 2:
            return {}
        # the buffers' vectors are this probe's own scratch: computed on in place
        trace_cov, grad_sq, gsnr = _noise(stats, self._buffers)
        mean, std = _spread(stats.sq_norms)
        return {"gns": trace_cov / grad_sq, "gns/trace_cov": trace_cov, "gns/grad_sq": grad_sq,
                "gsnr": gsnr, "per_sample_grad_norm/mean": mean, "per_sample_grad_norm/std": std}

    def _two_batch(self, ctx: ProbeContext, x: Any, y: Any) -> Measurement:
        if self._captures:  # what the hooks recorded of the training pass is not used
            for capture in self._captures:
                capture.take_raw()
        if batch_size(x) < 4:
            return ctx.skip(self.name, "BatchNorm in training mode and fewer than 4 examples: "
                            "neither per-example nor two-batch-size estimates apply")
        res = two_batch_noise(ctx.model, ctx.loss_fn, x, y, groups=self.groups)
        ctx.note(self.name, f"BatchNorm in training mode couples the examples: noise scale "
                 f"from two batch sizes ({res.small} and {res.big}, McCandlish et al. 2018 "
                 f"appendix A.1); no gsnr or per-example norms")
        return {"gns": res.trace_cov / res.grad_sq, "gns/trace_cov": res.trace_cov,
                "gns/grad_sq": res.grad_sq, "gns/trace_cov_stderr": res.trace_cov_stderr,
                "gns/grad_sq_stderr": res.grad_sq_stderr}


def _monitor_tree(ctx: ProbeContext) -> ModuleTree | None:
    """The tree of ``ctx.model`` that the monitor checked at this step (``ctx.cache``), or
    None outside a monitor."""
    tree = ctx.cache.get("tree")
    return tree if tree is not None and tree.model is ctx.model else None


class _Attachment:
    """Handle of :meth:`GradientNoise.attach`: ``remove()`` detaches the capture's hooks and
    drops the probe's plan (which holds the model's layers)."""

    def __init__(self, probe: GradientNoise, capture: LinearCapture):
        self._probe, self.capture = probe, capture

    def remove(self) -> None:
        self.capture.remove()
        captures = self._probe._captures
        if self.capture in captures:
            captures.remove(self.capture)
        self._probe._plan = None
        self._probe._layout = None


PROBES.register("grad-noise", GradientNoise, ddp="reduced",
                metrics=("gns", "gsnr", "gns/*", "per_sample_grad_norm/*"),
                plot="log-curves", title="Gradient noise",
                summary="gradient noise scale B_simple, mean GSNR, per-example grad-norm spread")
