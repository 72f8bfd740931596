"""Per-example gradient statistics of a batch, without materialising per-example gradients
where a layer allows it.

For a ``nn.Linear`` layer on 2-D inputs the gradient of example :math:`i` is the outer
product :math:`\\delta_i a_i^T` of the output gradient and the input, so the statistics the
probes need follow from the activations alone (the "BackPACK trick", Dangel et al. 2020):
:math:`\\|g_i\\|^2 = \\|\\delta_i\\|^2 \\|a_i\\|^2`, :math:`\\sum_i g_i = \\delta^T a` and
:math:`\\sum_i g_i^{\\odot 2} = (\\delta^{\\odot 2})^T a^{\\odot 2}`. Linear layers on inputs with
extra dimensions (sequences) get their per-example gradients by one ``einsum`` per layer.
Models with other trainable layers fall back to ``torch.func.vmap`` over ``grad``, in chunks.

During training, the inputs and output gradients of the layers are computed anyway by the
step's own forward and backward passes: a :class:`LinearCapture` (hooks, armed only on the
steps where statistics are due) records them and :func:`captured_grad_stats` turns them into
the same statistics without a second forward and backward pass.

The loss must be the *mean* of per-example losses (every trainlab task's loss is).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.log import warn_once
from trainlab.module_tree import ModuleTree
from trainlab.probes import fused
from trainlab.probes._autograd_internals import (
    product_node_slots,
    transforms_query,
    versions_counted,
)
from trainlab.probes._outputs import batch_size, call
from trainlab.restore import preserved

LossFn = Callable[[torch.Tensor, Any], torch.Tensor]
Records = dict[nn.Module, "Record | None"]
RawRecords = dict[nn.Module, "tuple[Any, ...] | None"]
"""What a :class:`LinearCapture` keeps of each layer in a pass, as its hooks keep it: ``(a,
d, w_t, bias, w_version, b_version)`` (the layer's input and output gradient, autograd's
gradient of :math:`W^T` and the bias's, or None where not taken, and their version
counters in the backward pass), or None for a layer recorded twice; :func:`records_of`
makes the :class:`Record` of each."""
FusedRows = tuple[torch.Tensor, dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]]
"""What :func:`_fused_rows` returns: the per-example squared norms, each layer's squares."""
REUSE_MIN_WEIGHTS = 65536  # weights of a layer from which reusing the batch gradient pays


class Record(NamedTuple):
    """What a :class:`LinearCapture` keeps of one ``nn.Linear`` layer in one pass.

    Attributes:
        a: the layer's input.
        d: the gradient of the loss with respect to the layer's output.
        weight, bias: this layer's own gradients of the loss, as autograd computed them in
            that pass; None when the layer's backward node does not expose them (e.g. inputs
            with extra dimensions). Shapes unchecked.
    """

    a: torch.Tensor
    d: torch.Tensor
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None

    # not detached (a detach per tensor per step costs more than it saves): read them under
    # torch.no_grad(), as captured_grad_stats does


@dataclass(frozen=True)
class GradStats:
    """Sufficient statistics of the per-example gradients :math:`g_1..g_n` of a batch.

    Attributes:
        n: number of examples.
        sq_norms: :math:`\\|g_i\\|^2`, shape ``(n,)``.
        grad_sum: :math:`\\sum_i g_i` per parameter name.
        grad_sq_sum: :math:`\\sum_i g_i^{\\odot 2}` (elementwise) per parameter name.
        method: ``"linear-hooks"``, ``"vmap"`` or ``"captured"`` (from the training step's
            own passes, :func:`captured_grad_stats`).
        reused_mean: part of ``grad_sum`` came from a known batch gradient (the caller's
            ``mean_grad``, checked, or the layers' own gradients of a recorded pass).
        flat_sum, flat_sq: ``grad_sum`` and ``grad_sq_sum`` as single flat vectors, when
            they were built that way (the dicts then hold views of them; entries in an
            internal order, the same in both); None otherwise. Read-only.
    """

    n: int
    sq_norms: torch.Tensor
    grad_sum: Mapping[str, torch.Tensor]
    grad_sq_sum: Mapping[str, torch.Tensor]
    method: str
    reused_mean: bool = False
    flat_sum: torch.Tensor | None = None
    flat_sq: torch.Tensor | None = None

    def mean(self) -> dict[str, torch.Tensor]:
        """The batch gradient :math:`\\bar g = \\frac1n\\sum_i g_i`."""
        return {k: v / self.n for k, v in self.grad_sum.items()}

    def variance(self) -> dict[str, torch.Tensor]:
        """Elementwise variance over examples, :math:`\\frac1n\\sum_i g_i^2 - \\bar g^2`
        (population form, clamped at 0)."""
        return {k: (self.grad_sq_sum[k] / self.n - (self.grad_sum[k] / self.n).pow(2)
                    ).clamp_min(0.0) for k in self.grad_sum}

    def mean_sq_norm(self) -> torch.Tensor:
        """:math:`\\|\\bar g\\|^2`."""
        return sum(torch.dot(v.reshape(-1), v.reshape(-1)) for v in self.grad_sum.values()
                   ) / self.n ** 2


@dataclass(frozen=True)
class _Layout:
    """Where each trainable parameter of a Linear-only model lives: its layer, and its place
    in the flat vectors of statistics (parameter order)."""

    owners: dict[str, tuple[nn.Linear, str]]
    layers: dict[nn.Linear, dict[str, str]]
    shapes: tuple[torch.Size, ...]
    sizes: tuple[int, ...]
    shape_of: dict[str, torch.Size]


_LAYOUTS: weakref.WeakKeyDictionary[
    nn.Module, tuple[tuple[str, ...], list[int], _Layout | None]] = weakref.WeakKeyDictionary()


def _linear_layout(model: nn.Module, params: dict[str, torch.Tensor] | None = None
                   ) -> _Layout | None:
    """The layout of ``model``'s trainable parameters (``params``, by name, when the caller
    has them: detached views do), or None when some trainable parameter is not a Linear
    layer's own. Cached per model while its trainable parameters (names and storage) stay
    the same."""
    if params is None:
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    names, pointers = tuple(params), [p.data_ptr() for p in params.values()]
    hit = _LAYOUTS.get(model)
    if hit is not None and hit[0] == names and hit[1] == pointers:
        return hit[2]
    owners = _find_linear_owners(model)
    layout = None if owners is None else _Layout(
        owners, _layers(owners), tuple(params[n].shape for n in owners),
        tuple(params[n].numel() for n in owners), {n: params[n].shape for n in owners})
    _LAYOUTS[model] = (names, pointers, layout)
    return layout


def _linear_owners(model: nn.Module) -> dict[str, tuple[nn.Linear, str]] | None:
    """Map each trainable parameter name to its ``(Linear module, 'weight'|'bias')``, or None
    when some trainable parameter is not a Linear layer's own (cached, see
    :func:`_linear_layout`)."""
    layout = _linear_layout(model)
    return None if layout is None else layout.owners


def _plain_linear(module: nn.Module) -> bool:
    """An ``nn.Linear`` whose forward is ``nn.Linear``'s own (``x W^T + b`` with its own
    parameters): a subclass computing something else is not one for the products here."""
    return isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward


def _find_linear_owners(model: nn.Module) -> dict[str, tuple[nn.Linear, str]] | None:
    owners: dict[str, tuple[nn.Linear, str]] = {}
    for mname, module in model.named_modules():
        if _plain_linear(module):
            for pname, p in module.named_parameters(recurse=False):
                if p.requires_grad:
                    owners[f"{mname}.{pname}" if mname else pname] = (module, pname)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    return {n: owners[n] for n in trainable} if set(trainable) == set(owners) else None


def _layers(owners: dict[str, tuple[nn.Linear, str]]) -> dict[nn.Linear, dict[str, str]]:
    """``{Linear module: {'weight'|'bias': parameter name}}`` in the parameter order."""
    layers: dict[nn.Linear, dict[str, str]] = {}
    for name, (module, kind) in owners.items():
        layers.setdefault(module, {})[kind] = name
    return layers


def _agrees(layers: dict[nn.Linear, dict[str, str]],
            acts: dict[nn.Linear, tuple[torch.Tensor, torch.Tensor | None]],
            mean_grad: dict[str, torch.Tensor]) -> bool:
    """Whether ``mean_grad`` is the batch gradient of the pass whose layer inputs ``a`` and
    output gradients ``d`` are given, by cheap projections (no matrix product, one host
    sync): the bias gradient is :math:`\\sum_r d_r` and the weight gradient times the ones
    vector is :math:`d^T (a\\mathbf 1)` (rows ``r`` over examples and, for sequences,
    positions), both to 1e-4 of the largest entry. False when a gradient is missing or
    misshapen."""
    got: list[torch.Tensor] = []
    want: list[torch.Tensor] = []
    for module, names in layers.items():
        a, d = acts[module]
        if d is None:
            return False
        if a.dim() != 2:
            a, d = a.reshape(-1, a.shape[-1]), d.reshape(-1, d.shape[-1])
        for kind, name in names.items():
            g = mean_grad.get(name)
            if g is None or g.shape != getattr(module, kind).shape:
                return False
            got.append(g.sum(1) if kind == "weight" else g)
            want.append(d.T @ a.sum(1) if kind == "weight" else d.sum(0))
    if not got:
        return False
    got_t, want_t = torch.cat(got), torch.cat(want)
    return bool((got_t - want_t).abs().max() <= 1e-4 * want_t.abs().max() + 1e-12)


def _stats_linear_hooks(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any,
                        layout: _Layout,
                        mean_grad: dict[str, torch.Tensor] | None = None) -> GradStats | None:
    records: dict[nn.Linear, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor
             ) -> torch.Tensor:
        records.setdefault(module, []).append((args[0].detach(), out))
        # the rest of this (the probe's own) forward gets a copy: an in-place activation
        # such as ReLU(inplace=True) must not overwrite the output differentiated below
        return out.clone()

    modules = set(layout.layers)
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.enable_grad():
            loss = loss_fn(call(model, inputs), targets)
    finally:
        for h in handles:
            h.remove()
    if any(len(r) != 1 for r in records.values()) or set(records) != modules:
        return None  # a layer used twice (or not at all): per-example products do not apply
    order = list(records)
    outs = [records[m][0][1] for m in order]
    n = outs[0].shape[0]
    dz = torch.autograd.grad(loss, outs, allow_unused=True)
    acts = {m: (records[m][0][0], d) for m, d in zip(order, dz)}
    layers = layout.layers
    # the known batch gradient replaces the sum product of the wide layers only: for small
    # ones the product is cheaper than checking that the gradient is this batch's
    reuse = {m: layers[m] for m in layers if mean_grad is not None and "weight" in layers[m]
             and m.weight.numel() >= REUSE_MIN_WEIGHTS and acts[m][0].dim() == 2}
    if reuse and not _agrees(reuse, acts, mean_grad):
        reuse = {}  # not this batch's gradient (clipped, accumulated, other batch)
    known = {m: {kind: mean_grad[name] for kind, name in names.items()}
             for m, names in reuse.items()} if mean_grad is not None else {}
    # the statistics take the dtype of the per-example gradients, not the loss's (a loss
    # computed in float32 from a bfloat16/float16 model's outputs)
    like = next((d for d in dz if d is not None), loss)
    return _linear_stats(layout, acts, n, n, known, like, "linear-hooks")


class Pending(NamedTuple):
    """Work on the flat gradient sums that a deferred :func:`captured_grad_stats` leaves to
    its consumer: ``out`` (the view of the flat entries ``offset .. offset + size``)
    becomes ``source * factor`` (a known batch gradient times the number of examples) or,
    with ``source`` None, is multiplied in place by ``factor`` (the scale of the
    per-example gradients)."""

    offset: int
    size: int
    source: torch.Tensor | None
    factor: int
    out: torch.Tensor

    def apply(self, flat: torch.Tensor, lo: int, hi: int,
              factor: torch.Tensor | int | None = None) -> None:
        """Do the part of this work that falls in ``flat[lo:hi]`` (same operation per
        element whatever the range; the whole of it on ``out`` directly). ``factor``: the
        operand to multiply by, when the caller holds ``self.factor`` as a 0-d tensor
        (:meth:`FlatBuffers.scalar`: the same numbers, fewer dispatched operations)."""
        factor = self.factor if factor is None else factor
        start, end = max(lo, self.offset), min(hi, self.offset + self.size)
        if start >= end:
            return
        if start == self.offset and end == self.offset + self.size:
            out, source = self.out, self.source
        else:
            out = flat[start:end]
            source = (None if self.source is None else
                      self.source.view(-1)[start - self.offset:end - self.offset])
        if source is None:
            out.mul_(factor)
        else:
            torch.mul(source, factor, out=out)


class FlatBuffers:
    """Flat vectors that :func:`captured_grad_stats` writes the gradient sums and sums of
    squares into, kept from one call to the next (no allocation per step), with a third
    (``mask``) and a fourth (``block``, one block of entries) that
    :mod:`~trainlab.probes.gradient_noise` uses as scratch; the per-parameter views of the
    first two are built once.

    Statistics built on these buffers are views of them: the next call with the same
    buffers overwrites them. Buffers that do not fit a call (another model layout, dtype or
    device) are replaced by fresh ones for that call. A deferred call
    (``captured_grad_stats(..., deferred=True)``) leaves two whole-vector passes undone:
    the gradient sums that are known batch gradients times ``n`` and the scale factors
    (``pending``), and the factor of the sums of squares (``sq_factor``); the consumer
    applies them block by block (:func:`~trainlab.probes.gradient_noise._noise`, while the
    block is in cache) or calls :meth:`settle`.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self.sum = self.sq = self.mask = self.block = torch.empty(0)
        self.sum_views: dict[str, torch.Tensor] = {}
        self.sq_views: dict[str, torch.Tensor] = {}
        self.pending: list[Pending] = []
        self.sq_factor = 1
        self._scalars: dict[tuple[Any, ...], torch.Tensor] = {}
        self.layout: _Layout | None = None  # what the buffers were fitted to
        self.plan: tuple[LayerPlan, ...] | None = None  # see _planned_stats
        self.squares: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}  # _fused_rows
        self.squares_key: tuple[Any, ...] | None = None
        self.rows_scratch = torch.empty(0, dtype=torch.float64)

    def scalar(self, value: float) -> torch.Tensor | float:
        """``value`` as an operand of the elementwise work on these buffers: on the CPU in
        float32 or float64, a 0-d tensor of the buffers' dtype, kept from call to call;
        else ``value`` itself. An operation with a Python number converts it to a tensor
        at every call (on the CPU three more dispatched operations, 3-4 us, as much as the
        operation itself on a small model); with a 0-d tensor holding the number rounded
        to the buffers' dtype, as that conversion rounds it, the numbers are the same
        (tested to the bit)."""
        dtype, device = self.sum.dtype, self.sum.device
        if dtype not in (torch.float32, torch.float64) or device.type != "cpu":
            return value
        key = (value, dtype)
        kept = self._scalars.get(key)
        if kept is None:
            kept = self._scalars[key] = torch.tensor(value, dtype=dtype)
        return kept

    def take_pending(self) -> tuple[list[Pending], int]:
        """The work a deferred :func:`captured_grad_stats` left (``pending``, ``sq_factor``),
        and forget it: the caller applies it."""
        pending, factor = self.pending, self.sq_factor
        self.pending, self.sq_factor = [], 1
        return pending, factor

    def settle(self) -> None:
        """Apply the work a deferred :func:`captured_grad_stats` left, over the whole
        vectors (the same operations, element by element, as the eager path): the statistics
        are then final."""
        pending, factor = self.take_pending()
        for item in pending:
            item.apply(self.sum, item.offset, item.offset + item.size,
                       self.scalar(item.factor))
        if factor != 1:
            self.sq.mul_(self.scalar(factor))

    def fit(self, layout: _Layout, like: torch.Tensor) -> FlatBuffers:
        """These buffers, (re)allocated for ``layout`` in ``like``'s dtype and device."""
        key = (tuple(layout.owners), layout.shapes, like.dtype, like.device)
        self.pending, self.sq_factor = [], 1
        if key != self._key:
            total = sum(layout.sizes)
            self.sum, self.sq = like.new_empty(total), like.new_empty(total)
            self.mask = like.new_empty(total)
            self.sum_views, self.sq_views = _shaped(layout, self.sum), _shaped(layout, self.sq)
            self._key = key
            self.layout = layout
            self.plan = _plan(layout, self.sum_views, self.sq_views)
        return self


def _linear_stats(layout: _Layout,
                  acts: dict[nn.Linear, tuple[torch.Tensor, torch.Tensor | None]], n: int,
                  scale: int, known: dict[nn.Linear, dict[str, torch.Tensor]],
                  like: torch.Tensor, method: str,
                  buffers: FlatBuffers | None = None, deferred: bool = False) -> GradStats:
    """Statistics from each layer's input ``a`` and output gradient ``d`` (of a loss that
    averages ``scale`` examples), over the ``n`` examples given. ``known[layer]`` holds
    that layer's batch gradients of the mean loss over all examples (``'weight'``,
    ``'bias'``; 2-D inputs), which replace the gradient-sum products when ``n == scale``.

    Built for few tensor operations and memory passes (at every step of ``economy`` each
    one counts): every product and sum is written straight into its place in two flat
    vectors (parameter order; ``buffers``, kept between calls, or new ones), so nothing is
    concatenated; a known batch gradient goes in by one product with ``n``; the factor
    ``scale`` of the per-example gradients is applied once, in place (except in float16,
    where the squares of the unscaled output gradients could underflow). The numbers are
    those of concatenating the per-layer products and scaling the flat vectors (tested to
    the bit against that reference). Layers of different dtypes (a float32 head on a
    bfloat16 body) give flat vectors in the promoted dtype, as concatenation did: a layer
    in another dtype computes its products in its own dtype and they are copied in.
    ``deferred`` (with ``buffers``): the known gradients times ``n``, the factor ``scale``
    of the other sums and that of the sums of squares are not applied but left in
    ``buffers`` (:class:`FlatBuffers`), for a consumer that applies them block by block.
    """
    post = 1 if like.dtype == torch.float16 else scale  # applied to the sums at the end
    dtype = like.dtype
    for _, d in acts.values():
        if d is not None and d.dtype != dtype:  # (a dispatched call each: only when needed)
            dtype = torch.promote_types(dtype, d.dtype)
    if dtype != like.dtype:
        like = like.new_empty(0, dtype=dtype)
    if buffers is not None:
        buffers.fit(layout, like)
        flat_sum, flat_sq = buffers.sum, buffers.sq
        sum_out, sq_out = buffers.sum_views, buffers.sq_views
    else:
        total = sum(layout.sizes)
        flat_sum, flat_sq = like.new_empty(total), like.new_empty(total)
        sum_out, sq_out = _shaped(layout, flat_sum), _shaped(layout, flat_sq)
    unscaled: list[torch.Tensor] = []  # gradient sums still to be multiplied by `post`
    pending = buffers.pending if deferred and buffers is not None else None
    sq_norms: torch.Tensor | None = None
    reused = False
    fast = _general_rows(layout, acts, n, post, flat_sum.dtype, sq_out, buffers)
    for module, names in layout.layers.items():
        a, d = acts[module]
        if d is None:
            for name in names.values():
                sum_out[name].zero_()
                sq_out[name].zero_()
            continue
        if post == 1:
            d = d * scale
        w_name, b_name = names.get("weight"), names.get("bias")
        mean = known.get(module, {}) if n == scale else {}
        if a.dim() == 2:
            # ||g_i||^2 = ||d_i||^2 (||a_i||^2 + 1 with a bias); one product per statistic
            if fast is not None:  # the squares, row and column sums from one pass in C
                d_sq, a_sq = fast[1][module]
            else:
                d_sq = d * d
                rows = d_sq.sum(1)
            if w_name is not None:
                if fast is None:
                    a_sq = a * a
                    a_rows = a_sq.sum(1)
                    if sq_norms is None:
                        sq_norms = (torch.addcmul(rows, rows, a_rows) if b_name is not None
                                    else rows * a_rows)
                    else:
                        sq_norms.addcmul_(rows, a_rows)
                        if b_name is not None:
                            sq_norms += rows
                _mm(d_sq.T, a_sq, sq_out[w_name])
                if "weight" in mean:  # the sum is n times the known batch gradient
                    _known(mean["weight"], n, post, sum_out[w_name], unscaled, pending,
                           flat_sum)
                else:
                    unscaled.append(_mm(d.T, a, sum_out[w_name]))
            elif b_name is not None:
                sq_norms = rows if sq_norms is None else sq_norms.add_(rows)
            if b_name is not None:
                if fast is None:
                    _sum0(d_sq, sq_out[b_name])
                if "bias" in mean:
                    _known(mean["bias"], n, post, sum_out[b_name], unscaled, pending,
                           flat_sum)
                else:
                    unscaled.append(_sum0(d, sum_out[b_name]))
            reused = reused or bool(mean)
        else:
            a3 = a.reshape(n, -1, a.shape[-1])
            d3 = d.reshape(n, -1, d.shape[-1])
            for kind, name in names.items():
                g = torch.einsum("nto,nti->noi", d3, a3) if kind == "weight" else d3.sum(1)
                g_sq = g * g
                rows = g_sq.flatten(1).sum(1)
                sq_norms = rows if sq_norms is None else sq_norms.add_(rows)
                unscaled.append(_sum0(g, sum_out[name]))
                _sum0(g_sq, sq_out[name])
    if fast is not None:
        sq_norms = fast[0]  # times post^2 already
    elif sq_norms is None:
        sq_norms = like.new_zeros(n)
    if post != 1:
        if pending is not None and buffers is not None:
            if unscaled:
                pending.extend(Pending(_offset(part, flat_sum), part.numel(), None, post,
                                       part) for part in unscaled)
                pending.sort(key=lambda item: item.offset)
            buffers.sq_factor = post * post
        else:
            scale_by = buffers.scalar(post) if buffers is not None else post
            for part in unscaled:
                part.mul_(scale_by)
            flat_sq.mul_(buffers.scalar(post * post) if buffers is not None else post * post)
        if fast is None:
            sq_norms.mul_(buffers.scalar(post * post) if buffers is not None
                          and sq_norms.dtype == flat_sq.dtype else post * post)
    return GradStats(n, sq_norms, sum_out, sq_out, method, reused, flat_sum, flat_sq)


def _mm(x: torch.Tensor, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``x @ y`` written into ``out`` (computed in the inputs' dtype, then copied, when
    ``out`` has another)."""
    return torch.mm(x, y, out=out) if x.dtype == out.dtype else out.copy_(torch.mm(x, y))


def _sum0(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``x.sum(0)`` written into ``out`` (as :func:`_mm` for another dtype)."""
    return torch.sum(x, 0, out=out) if x.dtype == out.dtype else out.copy_(x.sum(0))


def _offset(view: torch.Tensor, flat: torch.Tensor) -> int:
    """Where the view ``view`` of the flat vector ``flat`` starts in it."""
    return view.storage_offset() - flat.storage_offset()


def _known(mean: torch.Tensor, n: int, post: int, out: torch.Tensor,
           unscaled: list[torch.Tensor], pending: list[Pending] | None = None,
           flat: torch.Tensor | None = None) -> None:
    """``n`` times a known batch gradient into ``out`` (a view of ``flat``), or, with
    ``pending``, that work appended to it; in another dtype, as concatenation did: the
    gradient (times ``n`` only where ``post == 1``) is copied in, and the factor ``post``
    applied with the other sums."""
    if mean.dtype == out.dtype:
        if (pending is not None and flat is not None and mean.shape == out.shape
                and mean.is_contiguous()):
            pending.append(Pending(_offset(out, flat), out.numel(), mean, n, out))
        else:
            torch.mul(mean, n, out=out)
    else:
        out.copy_(mean * n if post == 1 else mean)
        if post != 1:
            unscaled.append(out)


def _shaped(layout: _Layout, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-parameter views of a flat vector laid out by :func:`_linear_stats`."""
    out = {}
    for name, chunk, shape in zip(layout.owners, flat.split(layout.sizes), layout.shapes):
        out[name] = chunk.view(shape)
    return out


class _InertHook:
    """What a copy of a hooked model gets instead of a capture's hook (a no-op)."""

    def __call__(self, module: nn.Module, args: Any, out: Any) -> None:
        return None


_grad_enabled = torch.is_grad_enabled
_UNSEEN = object()


class _RecordingHook:
    """Forward hook of :class:`LinearCapture` (a class, not a closure, so that a model
    carrying it can still be pickled or deep-copied: copies get an inert hook).

    It runs at every armed forward pass of every layer, and the node hook it registers in
    every backward pass, so both are written for few Python operations: the node type's
    slots looked up once per type and capture, the functorch query called directly, two
    kinds of node hook (without the layer's own gradients; with them), and what the node
    hook keeps a plain tuple (:data:`RawRecords`: no record made, no view of the weight's
    gradient). At 23k parameters the capture's own bookkeeping over a plain closure keeping
    the same tensors went from 21-27 to 3-7 us a pass (session noise3)."""

    def __init__(self, capture: LinearCapture):
        self.capture = capture

    def __call__(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        cap = self.capture
        if not cap.armed or not args or not _grad_enabled():
            return None
        node = out.grad_fn if isinstance(out, torch.Tensor) else None
        if node is None or cap._active():
            return None
        kind = type(node)
        slots = cap._slots.get(kind, _UNSEEN)
        if slots is _UNSEEN:
            slots = cap._node_slots(kind)
        a, generation = args[0], cap._generation
        # each node hook returns None: autograd's gradients are left as they are
        if slots is None:
            def keep(grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> None:
                d = grad_outputs[0]
                if d is not None and cap._generation == generation:
                    records = cap._records
                    records[module] = (None if module in records
                                       else (a, d, None, None, None, None))
        else:
            w_slot, b_slot = slots

            def keep(grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> None:
                d = grad_outputs[0]
                if d is not None and cap._generation == generation:
                    records = cap._records
                    if module in records:  # recorded twice: unusable
                        records[module] = None
                        return
                    # the layer's own gradients come along, W's as autograd's gradient of
                    # W^T (its transpose becomes p.grad without a copy), with the version
                    # counters that tell whether p.grad was changed in place since
                    w_t = grad_inputs[w_slot]
                    bias = None if b_slot is None else grad_inputs[b_slot]
                    records[module] = (a, d, w_t, bias,
                                       None if w_t is None else w_t._version,
                                       None if bias is None else bias._version)

        node.register_hook(keep)
        return None

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return _InertHook, ()


class LinearCapture:
    """Records, while armed, the input :math:`a` and the output gradient
    :math:`\\partial L / \\partial z` of every ``nn.Linear`` layer of ``model`` during its own
    forward and backward passes, so that :func:`captured_grad_stats` needs no second pass.

    One forward hook per Linear layer is registered while armed (ahead of the layer's other
    forward hooks, so it sees the layer's own output) and removed when disarmed: a disarmed
    capture leaves the model without hooks, so its modules keep PyTorch's fast call path
    at the steps no probe is due (about 5% of a small MLP's step). :meth:`pause` stops
    recording but keeps the hooks until the next :meth:`arm`, so that a capture armed at
    consecutive steps does not remove and register them again (about 16 us a step for a
    three-layer MLP). Armed, in a forward
    pass with gradients enabled, it registers a hook
    on the backward node of the layer's output; in the backward pass that hook keeps the
    gradient with respect to the layer's output (even when an in-place activation
    overwrites that output afterwards) and, for the matrix-product nodes of 2-D inputs, the
    weight and bias gradients autograd computed for this layer alone. Neither hook changes
    any value (both return None). A layer recorded more than once between two :meth:`arm`
    calls (a layer used twice, several backward passes) is marked unusable (``None``). The
    layer's own gradients become ``p.grad`` without a copy, so :meth:`take` hands them out
    only while their version counters are those of the backward pass (``p.grad`` clipped
    in place since: the record comes without them).
    """

    def __init__(self, model: nn.Module):
        self._model = weakref.ref(model)
        self.modules = [m for m in model.modules() if _plain_linear(m)]
        self.armed = False
        self._generation = 0
        self._records: RawRecords = {}
        # per node type: the slots of the layer's own gradients (None: not taken)
        self._slots: dict[type, tuple[int, int | None] | None] = {}
        self._active = transforms_query()  # whether a functorch transform is active
        self._hook = _RecordingHook(self)
        self._handles: list[Any] = []

    @property
    def model(self) -> nn.Module | None:
        return self._model()

    @property
    def recorded(self) -> int:
        """Number of layers with something recorded since the last :meth:`arm` (True)."""
        return len(self._records)

    def _node_slots(self, kind: type) -> tuple[int, int | None] | None:
        """The slots of a layer's own weight and bias gradients in the ``grad_inputs`` of
        a node of type ``kind`` (:func:`~trainlab.probes._autograd_internals.product_node_slots`),
        kept for this capture; None where they are not known, or where torch has no
        version counters (:func:`~trainlab.probes._autograd_internals.versions_counted`:
        the layer's own gradients are then never taken)."""
        slots = product_node_slots().get(kind.__name__)
        if slots is not None and not versions_counted():
            slots = None
        self._slots[kind] = slots
        return slots

    def arm(self, on: bool) -> None:
        """Start (dropping what was recorded) or stop recording."""
        if on:
            self._generation += 1
            self._records = {}
            if not self._handles:
                self._handles = [m.register_forward_hook(self._hook, prepend=True)
                                 for m in self.modules]
        else:
            self._unhook()
        self.armed = on

    def pause(self) -> None:
        """Stop recording, keeping what was recorded and the hooks (a disarmed hook returns
        at its first check): the next :meth:`arm` keeps them (True) or removes them
        (False), so that a capture armed at consecutive steps registers its hooks once."""
        self.armed = False

    def _unhook(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def take(self) -> Records:
        """What was recorded (``None`` for a layer recorded twice), then forget it. A
        layer's own gradients are kept only while they are what its backward node computed:
        changed in place since (``p.grad`` clipped in place shares their memory), the
        record comes without them; where torch has no version counters
        (:func:`~trainlab.probes._autograd_internals.versions_counted`) they are never
        taken (the statistics then compute them from ``a`` and ``d``)."""
        return records_of(self.take_raw())

    def take_raw(self) -> RawRecords:
        """What was recorded, as the hooks keep it (:data:`RawRecords`: no record made, no
        gradient transposed, no version counter compared; :func:`records_of` does that),
        then forget it: for a consumer that checks what it reads itself, as
        :class:`~trainlab.probes.noise_plan.NoisePlan` does."""
        records, self._records = self._records, {}
        return records

    def remove(self) -> None:
        """Detach every hook and drop what was recorded."""
        self._unhook()
        self.armed = False
        self._generation += 1
        self._records = {}


def records_of(raw: RawRecords) -> Records:
    """The :class:`Record` of each layer of what a :class:`LinearCapture` kept
    (:meth:`LinearCapture.take_raw`): the weight's gradient as the transpose of autograd's
    gradient of :math:`W^T`, and a layer's own gradients dropped where their version
    counters moved since the backward pass (changed in place: ``p.grad`` clipped)."""
    records: Records = {}
    for module, kept in raw.items():
        if kept is None:
            records[module] = None
            continue
        a, d, w_t, bias, w_then, b_then = kept
        if ((w_t is not None and w_t._version != w_then)
                or (bias is not None and bias._version != b_then)):
            w_t = bias = None
        records[module] = Record(a, d, None if w_t is None else w_t.T, bias)
    return records


def captured_grad_stats(model: nn.Module, records: Records, batch_size: int,
                        examples: int | None = None,
                        params: dict[str, torch.Tensor] | None = None,
                        buffers: FlatBuffers | None = None,
                        deferred: bool = False) -> GradStats | None:
    """Per-example gradient statistics from what a :class:`LinearCapture` recorded in the
    training step's own forward and backward pass of a batch of ``batch_size`` examples
    (the loss being their mean), over the first ``examples`` of them (all by default).

    With every example, the gradient sums are the layers' own gradients that autograd
    computed in that pass (times ``batch_size``: no product); otherwise, and for layers
    whose backward node does not expose them, they come from the recorded inputs and
    output gradients. Either way the statistics are those of the recorded pass alone: what
    happened to ``p.grad`` afterwards (clipping) or terms of the loss that reach the
    parameters directly (an L2 penalty) play no part. None when the record cannot be used
    (a trainable parameter outside an ``nn.Linear``, a layer missing or recorded twice,
    another batch size); the caller then recomputes with :func:`per_sample_grad_stats`.
    ``params``: the model's trainable parameters by name, when the caller has them.
    ``buffers``: :class:`FlatBuffers` to write the sums into (kept by a caller that asks
    every step: no allocation); the statistics returned are then views of them, valid until
    the next call with the same buffers.
    ``deferred`` (with ``buffers``): two whole-vector passes are left to the consumer
    (:class:`FlatBuffers`; the flat vectors are final only after ``buffers.settle()``).
    """
    layout = _linear_layout(model, params)
    if layout is None:
        return None
    with torch.no_grad():
        return _captured(layout, records, batch_size, examples, buffers, deferred)


def _captured(layout: _Layout, records: Records, batch_size: int, examples: int | None,
              buffers: FlatBuffers | None = None, deferred: bool = False
              ) -> GradStats | None:
    if buffers is not None and (examples is None or examples >= batch_size):
        planned = _planned_stats(layout, records, batch_size, buffers, deferred)
        if planned is not None:
            return planned
    acts: dict[nn.Linear, tuple[torch.Tensor, torch.Tensor | None]] = {}
    known: dict[nn.Linear, dict[str, torch.Tensor]] = {}
    for m, names in layout.layers.items():
        rec = records.get(m)
        if rec is None or rec.a.shape[0] != batch_size or rec.a.shape[:-1] != rec.d.shape[:-1]:
            return None
        rec = _in_dtype(rec, m.weight.dtype)
        acts[m] = (rec.a, rec.d)
        if rec.a.dim() != 2:
            continue
        own = {}
        for kind, name in names.items():
            shape = layout.shape_of[name]
            got = rec.weight if kind == "weight" else rec.bias
            if got is None or got.shape != shape:
                break
            own[kind] = got
        else:
            known[m] = own
    n = batch_size if examples is None else min(examples, batch_size)
    if n < batch_size:
        acts = {m: (a[:n], d[:n]) for m, (a, d) in acts.items()}
    like = next(iter(acts.values()))[1]
    return _linear_stats(layout, acts, n, batch_size, known, like, "captured", buffers,
                         deferred)


class LayerPlan(NamedTuple):
    """One layer's places in :class:`FlatBuffers` for :func:`_planned_stats`: the views of
    its weight's (and bias's) sums of squares and gradient sums, and the shapes its
    recorded gradients must have."""

    module: nn.Linear
    weight_sq: torch.Tensor
    weight_sum: torch.Tensor
    bias_sq: torch.Tensor | None
    bias_sum: torch.Tensor | None


PLAN_MAX_NUMEL = 65536
"""Models of at most this many trainable parameters take :func:`_planned_stats` (above
it the work is the memory passes, which the deferred general path spares, not Python)."""


def _plan(layout: _Layout, sums: dict[str, torch.Tensor], sqs: dict[str, torch.Tensor]
          ) -> tuple[LayerPlan, ...] | None:
    """The plan of a layout whose every layer trains its weight (None otherwise, or above
    :data:`PLAN_MAX_NUMEL` parameters)."""
    if sum(layout.sizes) > PLAN_MAX_NUMEL or any(
            "weight" not in names for names in layout.layers.values()):
        return None
    return tuple(LayerPlan(m, sqs[names["weight"]], sums[names["weight"]],
                           sqs.get(names.get("bias", "")), sums.get(names.get("bias", "")))
                 for m, names in layout.layers.items())


def _planned_stats(layout: _Layout, records: Records, batch_size: int, buffers: FlatBuffers,
                   deferred: bool) -> GradStats | None:
    """:func:`_linear_stats` for the common case, as one straight pass over a plan kept in
    ``buffers`` (at every step of ``economy`` on a small model, the general path's Python
    -- dicts of layers, records checked and converted, work deferred in
    :class:`Pending` objects -- cost about as much as its tensor operations): every layer
    of ``layout`` recorded on 2-D inputs of ``batch_size`` rows with its own weight and
    bias gradients, everything in the buffers' dtype (float32 or float64, CPU), all examples
    used, buffers already fitted to ``layout``. The same operations in the same order per
    entry as the general path, so the same numbers, to the bit (tested); None when the case
    does not apply (the general path then runs)."""
    plan = buffers.plan
    if plan is None or buffers.layout is not layout:
        return None
    dtype = buffers.sum.dtype
    if dtype not in (torch.float32, torch.float64) or buffers.sum.device.type != "cpu":
        return None
    for step in plan:
        rec = records.get(step.module)
        if (rec is None or rec.a.dim() != 2 or rec.a.shape[0] != batch_size
                or rec.d.dim() != 2 or rec.d.shape[0] != batch_size
                or rec.a.dtype != dtype or rec.d.dtype != dtype
                or rec.weight is None or rec.weight.shape != step.weight_sum.shape
                or rec.weight.dtype != dtype
                or (step.bias_sum is not None and (
                    rec.bias is None or rec.bias.shape != step.bias_sum.shape
                    or rec.bias.dtype != dtype))):
            return None
    n = buffers.scalar(batch_size)
    factor = buffers.scalar(batch_size * batch_size)
    fast_rows = _fused_rows([(step.module, records[step.module].a, records[step.module].d,
                              step.bias_sq) for step in plan], batch_size,
                            batch_size * batch_size, buffers.sum.dtype, buffers)
    sq_norms = None if fast_rows is None else fast_rows[0]  # times n^2 already
    fast = fast_rows is not None
    pending: list[Pending] = []  # the known gradients times n, left to the consumer
    for step in plan:
        rec, bias = records[step.module], step.bias_sq is not None
        if fast_rows is not None:  # the squares, row and column sums in one pass in C
            d_sq, a_sq = fast_rows[1][step.module]
        else:
            d_sq = rec.d * rec.d
            rows = d_sq.sum(1)
            a_sq = rec.a * rec.a
            a_rows = a_sq.sum(1)
            if sq_norms is None:  # ||d_i||^2 (||a_i||^2 + 1 with a bias), summed over layers
                sq_norms = torch.addcmul(rows, rows, a_rows) if bias else rows * a_rows
            else:
                sq_norms.addcmul_(rows, a_rows)
                if bias:
                    sq_norms += rows
        torch.mm(d_sq.T, a_sq, out=step.weight_sq)
        if step.bias_sq is not None and not fast:
            torch.sum(d_sq, 0, out=step.bias_sq)
        for known, out in ((rec.weight, step.weight_sum), (rec.bias, step.bias_sum)):
            if out is None or known is None:
                continue
            if fast and deferred and known.is_contiguous():  # read by the C GSNR pass
                pending.append(Pending(_offset(out, buffers.sum), out.numel(), known,
                                       batch_size, out))
            else:
                torch.mul(known, n, out=out)
    if sq_norms is None:
        return None
    pending.sort(key=lambda item: item.offset)  # (parameter order: sorted already)
    buffers.pending, buffers.sq_factor = pending, 1
    if deferred:
        buffers.sq_factor = batch_size * batch_size
    else:
        buffers.sq.mul_(factor)
    if not fast:
        sq_norms.mul_(factor)
    return GradStats(batch_size, sq_norms, buffers.sum_views, buffers.sq_views, "captured",
                     True, buffers.sum, buffers.sq)


def _fused_rows(layers: list[tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor | None]],
                batch: int, factor: int, dtype: torch.dtype, buffers: FlatBuffers | None
                ) -> FusedRows | None:
    """For 2-D layers ``(module, a, d, bias_sq)``: the per-example squared norms times
    ``factor`` and each layer's squares ``(d * d, a * a)``, with the bias sums of squares
    written into ``bias_sq``, in one pass in C (:func:`trainlab.probes.fused.example_rows`:
    the squares are the eager path's bits, the sums within
    :data:`trainlab.probes.fused.RTOL` of it); the squares go to scratch kept in
    ``buffers`` (fresh without). The planned and the general path both take it, so that
    they keep giving the same numbers. None where that path does not apply."""
    if fused.library() is None:  # off or unavailable: nothing allocated
        return None
    key = (batch, dtype, tuple((m, a.shape[1], d.shape[1]) for m, a, d, _ in layers))
    if buffers is not None and buffers.squares_key == key:
        squares, scratch = buffers.squares, buffers.rows_scratch
    else:
        squares = {m: (torch.empty(batch, d.shape[1], dtype=dtype),
                       torch.empty(batch, a.shape[1], dtype=dtype)) for m, a, d, _ in layers}
        scratch = torch.empty(batch + max(d.shape[1] for _, _, d, _ in layers),
                              dtype=torch.float64)
        if buffers is not None:
            buffers.squares, buffers.rows_scratch, buffers.squares_key = squares, scratch, key
    out = torch.empty(batch, dtype=dtype)
    if not fused.example_rows([(a, d, squares[m][1], squares[m][0], bias_sq)
                               for m, a, d, bias_sq in layers], factor, scratch, out):
        return None
    return out, squares


def _general_rows(layout: _Layout,
                  acts: dict[nn.Linear, tuple[torch.Tensor, torch.Tensor | None]], n: int,
                  post: int, dtype: torch.dtype, sq_out: dict[str, torch.Tensor],
                  buffers: FlatBuffers | None
                  ) -> FusedRows | None:
    """:func:`_fused_rows` for :func:`_linear_stats` when every layer has its weight, 2-D
    inputs and an output gradient in the statistics' dtype (not float16, whose gradients
    are scaled first); else None."""
    if post == 1:
        return None
    layers = []
    for module, names in layout.layers.items():
        a, d = acts[module]
        if (d is None or a.dim() != 2 or "weight" not in names or a.dtype != dtype
                or d.dtype != dtype):
            return None
        layers.append((module, a, d, sq_out[names["bias"]] if "bias" in names else None))
    return _fused_rows(layers, n, post * post, dtype, buffers) if layers else None


def _in_dtype(rec: Record, dtype: torch.dtype) -> Record:
    """A record of a pass under autocast (bfloat16/float16 activations and gradients of a
    float32 layer) in the layer's dtype: the statistics are computed in float32."""
    if rec.a.dtype == dtype and rec.d.dtype == dtype:
        return rec
    return Record(*(None if t is None else t.to(dtype) for t in rec))


def training_batchnorm(model: nn.Module) -> bool:
    """Whether a BatchNorm layer of ``model`` is in training mode (it then couples the
    examples of a batch through the batch statistics: per-example gradients are undefined)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
               for m in model.modules())


class BatchNormWatch:
    """:func:`training_batchnorm` of a model asked at every step, the module tree walked only
    when it changed: called at every step of ``economy``, the walk of ``model.modules()``
    cost 10-12 us at 23k parameters (a generator per module, a memo set, name strings), as
    much as a fifth of the ``grad-noise`` measurement's Python.

    The model's :class:`~trainlab.module_tree.ModuleTree` says when the tree changed (any
    submodule or parameter added, removed, replaced or renamed, or a dict swapped); the
    BatchNorm layers are found again only when its generation moved, and at each call only
    their ``training`` flags are read, so a ``model.train()`` / ``model.eval()`` or a
    layer's own switch counts at once. A tree that cannot be checked cheaply (another torch
    release, a module type with its own walk) is walked at every call (warned once, by the
    tree). Inside a monitor the monitor's tree, already checked at that step, can be passed
    (``tree=``) so the model's tree is checked once a step for all its users.

    Attributes:
        walks: how many times a module tree was walked for this watch (for tests).
    """

    def __init__(self) -> None:
        self._tree: ModuleTree | None = None
        self._generation = -1  # the generation the kept layers belong to
        self._norms: tuple[nn.Module, ...] = ()
        self.walks = 0

    def __call__(self, model: nn.Module, tree: ModuleTree | None = None) -> bool:
        """Whether a BatchNorm layer of ``model`` is in training mode (as
        :func:`training_batchnorm`). ``tree``: ``model``'s tree, already updated by its
        owner at this step (not checked again here)."""
        if tree is None:
            tree = self._tree
            if tree is None or tree.model is not model:
                tree = self._tree = ModuleTree(model)
            self.walks += tree.update()
        if tree.generation != self._generation:
            self._generation = tree.generation
            self._norms = tuple(m for m in tree.modules or ()
                                if isinstance(m, nn.modules.batchnorm._BatchNorm))
        return any([norm.training for norm in self._norms])  # (a list: no generator)

    def __reduce__(self) -> tuple[type, tuple[()]]:
        """Copies and pickles start without a kept tree (it holds the model's modules)."""
        return BatchNormWatch, ()


def _one_example(x: Any) -> Any:
    """One example (vmap's slice) as a batch of one; tuples entry-wise; None stays None."""
    if x is None:
        return None
    if isinstance(x, tuple):
        return tuple(_one_example(t) for t in x)
    return x.unsqueeze(0)


def _rows(x: Any, i: int, j: int) -> Any:
    if x is None:
        return None
    return tuple(_rows(t, i, j) for t in x) if isinstance(x, tuple) else x[i:j]


def _stats_vmap(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any,
                chunk: int) -> GradStats:
    if training_batchnorm(model):
        raise ConfigError("per-example gradients: a BatchNorm layer in training mode couples "
                          "the examples of a batch; put the model in eval mode")
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def one(p: dict[str, torch.Tensor], x: Any, y: Any) -> torch.Tensor:
        x1 = _one_example(x)
        out = functional_call(model, (p, buffers), x1 if isinstance(x1, tuple) else (x1,))
        return loss_fn(out, _one_example(y))

    per_example = vmap(grad(one), in_dims=(None, 0, None if targets is None else 0),
                       randomness="different")
    n = batch_size(inputs)
    sq_norms = []
    gsum = {k: torch.zeros_like(v) for k, v in params.items()}
    gsq = {k: torch.zeros_like(v) for k, v in params.items()}
    for i in range(0, n, chunk):
        g = per_example(params, _rows(inputs, i, i + chunk), _rows(targets, i, i + chunk))
        sq_norms.append(sum(v.pow(2).flatten(1).sum(1) for v in g.values()))
        for k, v in g.items():
            gsum[k] += v.sum(0)
            gsq[k] += v.pow(2).sum(0)
    return GradStats(n, torch.cat(sq_norms), gsum, gsq, "vmap")


def per_sample_grad_stats(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor,
                          targets: Any, *, method: str = "auto", chunk: int = 256,
                          mean_grad: dict[str, torch.Tensor] | None = None) -> GradStats:
    """Per-example gradient statistics of ``loss_fn(model(inputs), targets)`` at the model's
    current parameters and mode.

    Args:
        method: ``"auto"`` (Linear-layer products when every trainable parameter belongs to
            a ``nn.Linear`` used once per forward, else ``vmap``), ``"linear-hooks"`` or
            ``"vmap"``.
        chunk: examples per ``vmap`` call (bounds memory on the fallback path).
        mean_grad: the batch gradient of this very loss by parameter name, when the caller
            already has it (``p.grad`` right after this batch's backward pass). On the
            Linear-layer path it replaces the gradient-sum product of each layer with at
            least ``REUSE_MIN_WEIGHTS`` weights (smaller products cost less than the check);
            it is checked against the recomputed forward with two cheap projections per
            such layer and ignored when it does not match (a clipped or accumulated
            gradient, another batch, dropout masks that differ).

    The model's mode, ``.grad``, weights and the global RNG are left as found.
    """
    check_choice("method", method, ("auto", "linear-hooks", "vmap"), owner="per_sample_grad_stats")
    check_range("chunk", chunk, low=1, owner="per_sample_grad_stats")
    if method != "vmap":
        layout = _linear_layout(model)
        stats = None
        if layout is not None:
            # this path touches neither .grad nor the mode; only dropout could draw numbers
            rng = torch.get_rng_state()
            try:
                stats = _stats_linear_hooks(model, loss_fn, inputs, targets, layout, mean_grad)
            finally:
                torch.set_rng_state(rng)
        if stats is not None:
            return stats
        if method == "linear-hooks":
            raise ConfigError("per_sample_grad_stats: method 'linear-hooks' needs every "
                              "trainable parameter in an nn.Linear called once per forward")
        warn_once(f"per-sample-vmap:{type(model).__name__}",
                  "per-example gradients of %s by torch.func.vmap (slower than the "
                  "nn.Linear hooks, which need every trainable parameter in an nn.Linear "
                  "called once per forward)", type(model).__name__)
    with preserved(model):
        return _stats_vmap(model, loss_fn, inputs, targets, chunk)
