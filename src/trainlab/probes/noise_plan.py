r"""The ``grad-noise`` measurement of a captured training pass, on a plan kept from one step
to the next.

On a small model at every step of ``economy``, the tensor work of the measurement is three
products :math:`(\delta^{\odot 2})^T a^{\odot 2}` and two passes in C
(:func:`trainlab.probes.fused.example_rows`, :func:`trainlab.probes.fused.gsnr_sums`), some
80 us at 23k parameters; the Python around them (the records checked and converted, the
statistics assembled, the deferred work listed, the pointer arrays of the C calls built,
the terms formed as tensors) cost three times that. A :class:`NoisePlan` is built once per
parameter layout (:func:`~trainlab.probes.per_sample._linear_layout`: names and storage of
the trainable parameters), batch size and dtype, and keeps everything that does not change
from step to step: the scratch the squares are written into, the transposed views the
products read, the flat sums of squares they write (laid out as the general path lays
them out), the pointer arrays and every argument of the C calls. A step then only checks
the recorded tensors (dtype, CPU, contiguity and shape: what the C code reads), writes
their data pointers into the arrays, and makes the two C calls and the products. Layer by
layer (:data:`LAYERWISE_MIN`) every layer writes its squares and its block of sums of
squares into one scratch shared by all layers (the largest layer's size), which the
previous layer's work has just brought into the cache: at 0.55M parameters the squares'
pass took 0.16 ms instead of 0.23 and the plan 1.54 ms instead of 1.72, at 8.5M 27.5
instead of 29.2 (session noise2). Any change of layout, batch size or dtype builds a new
plan; a record that does not fit (a layer missing or recorded twice, a pass under
autocast, inputs with extra dimensions, a layer whose backward node did not hand over its
own gradients) makes the step take the general path
(:func:`~trainlab.probes.per_sample.captured_grad_stats`, then
:func:`~trainlab.probes.gradient_noise._noise`).

The numbers are the general path's, to the bit (tested): the same C functions on the same
arrays in the same order (the known batch gradients of every layer times :math:`n` as the
segments of the GSNR pass, the sums of squares times :math:`n^2` as its factor), the same
products into the same places, the same float64 arithmetic for the three terms. The terms
are returned as Python floats holding the values the general path's 0-d tensors hold
(rounded once to float32 for float32 statistics, as ``torch.tensor`` rounds them; the noise
scale as the IEEE quotient of the two rounded terms, which a quotient in float64 rounded
once to float32 is), so the monitor records the same floats. The mean and standard
deviation of the per-example norms come, on both paths, from
:func:`trainlab.probes.fused.norm_spread` (float64 sums rounded once), not from
``Tensor.mean`` and ``Tensor.std`` as before this plan: within
:data:`trainlab.probes.fused.RTOL` of those (tested); in a training step each distinct
tensor operation also pays for its code being out of the caches (the three operations
on 128 entries cost 40-50 us there, the C call about 2).

References: McCandlish, Kaplan, Amodei et al., "An Empirical Model of Large-Batch Training",
2018, appendix A.1 (the noise scale); Liu et al., "Understanding Why Neural Networks
Generalize Well Through GSNR of Parameters", ICLR 2020 (the GSNR); Dangel et al., "BackPACK",
2020 (the per-example products) -- as :mod:`~trainlab.probes.gradient_noise` (none of them
is a row of papers.md).

Deviations from the papers: none beyond those of :mod:`~trainlab.probes.gradient_noise`.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from math import fsum, sqrt
from typing import Any, NamedTuple

import torch
from torch import nn

from trainlab.probes import fused
from trainlab.probes._scalar_bits import quotient, rounding
from trainlab.probes.per_sample import RawRecords, _Layout, _shaped

WIDE_GSNR = 2 ** 24
"""Above this many entries the general path returns the GSNR in float64 (it counts the
positive variances in float64 there); the plan does the same."""


LAYERWISE_MIN = 65536
"""From this many entries the plan works layer by layer (its squares, its product, its
GSNR terms), so that the GSNR pass reads a layer's sums of squares while they are in
cache: 3% less time at 0.55M and at 8.5M parameters, but 10% more at 23k, where the two
extra C calls per layer cost more than the cache spares (session noise)."""


class _Layer(NamedTuple):
    """One layer's fixed part of a :class:`NoisePlan`: the module, the shapes its records
    must have, the scratch its squares go to, the view of the transposed output-gradient
    squares and of its weight's sums of squares that the product reads and writes."""

    module: nn.Linear
    a_shape: torch.Size
    d_shape: torch.Size
    w_shape: torch.Size
    b_shape: torch.Size | None
    a_sq: torch.Tensor
    d_sq_t: torch.Tensor
    weight_sq: torch.Tensor


class NoisePlan:
    """The fixed part of the ``grad-noise`` measurement for one layout, batch size and dtype
    (module docstring). Build with :meth:`build`; :meth:`measure` per step.

    Attributes:
        key: ``(layout, batch, dtype)`` it was built for.
    """

    def __init__(self, layout: _Layout, batch: int, dtype: torch.dtype,
                 rows: Callable[..., None], gsnr: Callable[..., None],
                 spread: Callable[..., None]):
        self.key = (layout, batch, dtype)
        self.batch, self.dtype = batch, dtype
        self._rows, self._gsnr, self._spread = rows, gsnr, spread
        self._spread_out = array("d", [0.0, 0.0])
        total = sum(layout.sizes)
        self.size = total
        # where each parameter's sums of squares lie in the flat vector (a meta tensor: the
        # offsets only), as (offset, entries, layer, kind), sorted by offset
        places = _shaped(layout, torch.empty(total, dtype=dtype, device="meta"))
        shapes = [(module, names, *module.weight.shape) for module, names in layout.layers.items()]
        segments = sorted((places[name].storage_offset(), places[name].numel(), i, kind)
                          for i, (_, names, _, _) in enumerate(shapes)
                          for kind, name in names.items())
        spans = _spans(segments, len(shapes), total)
        self._spans = spans if total >= LAYERWISE_MIN else None
        if self._spans is None:  # one call of each kind: every layer its own scratch
            self.flat_sq = torch.empty(total, dtype=dtype)
            squares = [(torch.empty(batch, in_dim, dtype=dtype),
                        torch.empty(batch, out_dim, dtype=dtype), self.flat_sq, 0)
                       for _, _, out_dim, in_dim in shapes]
        else:
            # layer by layer: one scratch for every layer (the squares of a and d, the
            # layer's block of sums of squares), so that each layer writes into memory
            # the previous layer's work has just brought into the cache (session noise2)
            a_all = torch.empty(batch * max(s[3] for s in shapes), dtype=dtype)
            d_all = torch.empty(batch * max(s[2] for s in shapes), dtype=dtype)
            self.flat_sq = torch.empty(max(span[3] for span in spans), dtype=dtype)
            squares = [(a_all[:batch * in_dim].view(batch, in_dim),
                        d_all[:batch * out_dim].view(batch, out_dim), self.flat_sq, span[2])
                       for (_, _, out_dim, in_dim), span in zip(shapes, spans)]
        layers, pointers, dims = [], [], []
        for (module, names, out_dim, in_dim), (a_sq, d_sq, block, start) in zip(shapes, squares):
            def place(name: str, block: torch.Tensor = block, start: int = start) -> torch.Tensor:
                view = places[name]
                at = view.storage_offset() - start
                return block[at:at + view.numel()].view(view.shape)

            bias = module.bias if "bias" in names else None
            bias_sq = None if bias is None else place(names["bias"])
            layers.append(_Layer(module, torch.Size((batch, in_dim)),
                                 torch.Size((batch, out_dim)), module.weight.shape,
                                 None if bias is None else bias.shape, a_sq, d_sq.T,
                                 place(names["weight"])))
            # d, a (written per step), d * d, a * a, the bias's sums of squares
            pointers += [0, 0, d_sq.data_ptr(), a_sq.data_ptr(),
                         0 if bias_sq is None else bias_sq.data_ptr()]
            dims += [out_dim, in_dim]
        self._layers = tuple(layers)
        self._pointers = array("Q", pointers)
        self._dims = array("q", dims)
        self._segments = array("q", [v for off, size, _, _ in segments for v in (off, size)])
        # where each layer's weight and bias gradients go in the per-step source array
        self._source_slot = {(layer, kind): i for i, (_, _, layer, kind) in enumerate(segments)}
        self._sources = array("Q", bytes(8 * len(segments)))
        self._factors = array("f" if dtype == torch.float32 else "d", [batch] * len(segments))
        self._scratch = torch.empty(batch + max(dims[0::2]), dtype=torch.float64)
        # the per-example squared norms live in an array (summed by math.fsum without a
        # list made of them at each step); the tensor is a view of the same memory
        self._sq_buffer = array("f" if dtype == torch.float32 else "d", bytes(
            batch * self.flat_sq.element_size()))
        self._sq_norms = torch.frombuffer(self._sq_buffer, dtype=dtype)
        self._sums = array("d", [0.0, 0.0, 0.0])
        self._tiny = torch.finfo(dtype).tiny
        self._itemsize = self.flat_sq.element_size()
        self._rounded = rounding(dtype)
        # the integers of _values' arithmetic (n >= 2), and its float32 roundings
        self._square, self._less, self._pairs = batch ** 2, batch - 1, batch * (batch - 1)
        self._single, self._wide = dtype == torch.float32, total > WIDE_GSNR
        # what a step checks and where it writes, per layer: (module, shapes of a, d, the
        # gradient of W^T and the bias (None: no bias), the strides of a gradient of W^T
        # whose transpose is contiguous (None: a dimension of 1, is_contiguous() asked),
        # slot of d in the pointer array, slots of the weight and bias gradients in the
        # source array)
        self._checks = tuple(
            (layer.module, layer.a_shape, layer.d_shape, layer.w_shape[::-1],
             layer.b_shape, (1, layer.w_shape[1]) if min(layer.w_shape) > 1 else None,
             5 * i, self._source_slot[(i, "weight")], self._source_slot.get((i, "bias")))
            for i, layer in enumerate(layers))
        # the segments' offsets from the start of their layer's block, for per-layer calls
        self._relative = array("q", [] if spans is None else [
            v for off, size, layer, _ in segments for v in (off - spans[layer][2], size)])
        # every argument of the C calls is fixed for the plan (the arrays' contents change)
        n, scratch = batch, self._scratch.data_ptr()
        flat_sq, sums = self.flat_sq.data_ptr(), self._sums.buffer_info()[0]
        dims_at, ptrs_at = self._dims.buffer_info()[0], self._pointers.buffer_info()[0]
        sq_at = self._sq_norms.data_ptr()
        # one call each: every entry is in a segment (a layer's own gradient times n), so
        # the flat gradient sums are never read and flat_sq stands in for their pointer
        self._rows_args = _native(rows, (len(layers), n, dims_at, ptrs_at, scratch + 8 * n,
                                         scratch, float(n * n), 3, sq_at))
        self._gsnr_args = _native(gsnr, (
            flat_sq, flat_sq, total, len(segments), self._segments.buffer_info()[0],
            self._sources.buffer_info()[0], self._factors.buffer_info()[0], 1, n * n, n,
            self._tiny, 1, sums))
        # layer by layer (only with spans: each layer's entries one block)
        last, size = len(layers) - 1, self._itemsize
        segs, srcs = self._relative.buffer_info()[0], self._sources.buffer_info()[0]
        factors = self._factors.buffer_info()[0]
        self._steps = () if self._spans is None else tuple(
            (layer, _native(rows, (1, n, dims_at + 16 * i, ptrs_at + 40 * i, scratch + 8 * n,
                                   scratch, float(n * n), (i == 0) | (2 if i == last else 0),
                                   sq_at)),
             _native(gsnr, (flat_sq, flat_sq, length, count, segs + 16 * first,
                            srcs + 8 * first, factors + size * first, 1, n * n, n,
                            self._tiny, int(i == 0), sums)))
            for i, (layer, (first, count, _, length)) in enumerate(zip(layers, self._spans)))
        self._spread_args = _native(spread, (sq_at, n, self._spread_out.buffer_info()[0]))

    @classmethod
    def build(cls, layout: _Layout, batch: int, dtype: torch.dtype) -> NoisePlan | None:
        """A plan, or None where it does not apply: a layer that does not train its weight,
        weights of another dtype, fewer than 2 examples, the fused path off or unavailable
        (warned once by :mod:`trainlab.probes.fused`), or not float32/float64 on the CPU."""
        if batch < 2 or dtype not in (torch.float32, torch.float64) or not layout.layers:
            return None
        for module, names in layout.layers.items():
            if ("weight" not in names or module.weight.dtype != dtype
                    or module.weight.device.type != "cpu"):
                return None
        calls = [fused.entry(kind, dtype) for kind in ("rows", "gsnr", "spread")]
        if any(call is None for call in calls):
            return None
        return cls(layout, batch, dtype, *calls)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        """Copies and pickles hold no plan (its C function pointers and scratch belong to
        this process and these tensors): the copy's owner builds its own at its next
        measurement."""
        return _no_plan, ()

    def measure(self, records: RawRecords) -> dict[str, Any] | None:
        """The ``grad-noise`` values of a captured pass of ``batch`` examples whose layers
        recorded their inputs, output gradients and own gradients (every layer of the
        layout, once each; as :meth:`LinearCapture.take_raw
        <trainlab.probes.per_sample.LinearCapture.take_raw>` gives them), or None when the
        records do not fit (nothing written then but this plan's scratch). Each recorded
        tensor is checked for what the C code reads: the plan's dtype, the CPU, the shape,
        contiguity (for the gradient of :math:`W^T`, that of its transpose, the weight's
        gradient); the layer's own gradients also for their version counters, which must
        be those of the backward pass (not changed in place since, as
        :func:`~trainlab.probes.per_sample.records_of` checks)."""
        pointers, sources, dtype = self._pointers, self._sources, self.dtype
        for (module, a_shape, d_shape, w_shape, b_shape, w_strides, at, w_slot,
             b_slot) in self._checks:
            rec = records.get(module)
            if rec is None:
                return None
            a, d, w_t, bias, w_then, b_then = rec
            if (w_t is None or a.dtype is not dtype or d.dtype is not dtype
                    or w_t.dtype is not dtype or not (a.is_cpu and d.is_cpu and w_t.is_cpu)
                    or a.shape != a_shape or d.shape != d_shape or w_t.shape != w_shape
                    or not (a.is_contiguous() and d.is_contiguous())
                    or (w_t.stride() != w_strides if w_strides is not None
                        else not w_t.T.is_contiguous())
                    or w_t._version != w_then):
                return None
            pointers[at] = d.data_ptr()
            pointers[at + 1] = a.data_ptr()
            sources[w_slot] = w_t.data_ptr()  # (W's gradient: the same address)
            if b_slot is not None:
                if (bias is None or bias.dtype is not dtype or not bias.is_cpu
                        or bias.shape != b_shape or not bias.is_contiguous()
                        or bias._version != b_then):
                    return None
                sources[b_slot] = bias.data_ptr()
        mm = torch.mm
        if self._spans is None:  # layers not in consecutive blocks: one call of each kind
            self._rows(*self._rows_args)
            for layer in self._layers:
                mm(layer.d_sq_t, layer.a_sq, out=layer.weight_sq)
            self._gsnr(*self._gsnr_args)
        else:
            # layer by layer: its squares, its product, its GSNR terms, while its sums of
            # squares are still in cache (the same sums in the same order as one call each)
            rows, gsnr = self._rows, self._gsnr
            for layer, rows_args, gsnr_args in self._steps:
                rows(*rows_args)
                mm(layer.d_sq_t, layer.a_sq, out=layer.weight_sq)
                gsnr(*gsnr_args)
        return self._values()

    def _values(self) -> dict[str, Any]:
        """The measurement from the GSNR pass's sums (:math:`n^2\\|\\bar g\\|^2`, the sum of
        the ratios and their count) and the per-example squared norms: the three terms by
        the arithmetic of :func:`~trainlab.probes.gradient_noise._fused_noise`, the mean and
        standard deviation of the per-example norms by that of
        :func:`trainlab.probes.fused.spread_values` on the sums of
        :func:`~trainlab.probes.fused.norm_spread`'s C function (the same operations on
        the same floats as the general path, which calls those; the float32 roundings of
        one step done at once, as ``torch.tensor`` rounds each)."""
        g2, ratios, count = self._sums
        n, less = self.batch, self._less
        mean_sq = fsum(self._sq_buffer) / n
        self._spread(*self._spread_args)
        total, deviations = self._spread_out
        trace_cov = (mean_sq - g2 / self._square) * n / less
        grad_sq = (g2 - mean_sq * n) / self._pairs
        gsnr = ratios / max(int(count), 1)
        mean, std = total / n, sqrt(deviations / less)
        if self._single:
            if self._wide:
                trace_cov, grad_sq, mean, std = array("f", (trace_cov, grad_sq, mean, std))
            else:
                trace_cov, grad_sq, gsnr, mean, std = array(
                    "f", (trace_cov, grad_sq, gsnr, mean, std))
        return {"gns": self._rounded(trace_cov / grad_sq) if grad_sq != 0
                else quotient(trace_cov, grad_sq, self.dtype), "gns/trace_cov": trace_cov,
                "gns/grad_sq": grad_sq, "gsnr": gsnr, "per_sample_grad_norm/mean": mean,
                "per_sample_grad_norm/std": std}


def _no_plan() -> None:
    return None


def _native(call: Callable[..., None], args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` as instances of the C function's argument types (``argtypes``), made once:
    ctypes then passes them as they are instead of converting a Python number at each call
    (0.43 us less a call of the GSNR pass's 13 arguments; the same values: a float becomes
    a C float or double as the call's own conversion would make it). ``args`` as they are
    for a function without declared types."""
    kinds = getattr(call, "argtypes", None)
    if not kinds or len(kinds) != len(args):
        return args
    return tuple(kind(value) for kind, value in zip(kinds, args))


def _spans(segments: list[tuple[int, int, int, str]], layers: int, total: int
           ) -> tuple[tuple[int, int, int, int], ...] | None:
    """Per layer ``(first segment, segments, start, entries)`` of its block of the flat
    vectors, when the sorted ``segments`` ``(offset, size, layer, kind)`` put every layer's
    entries in one block, the blocks in layer order and covering ``total``; else None."""
    spans = []
    at = 0
    for layer in range(layers):
        mine = [j for j, seg in enumerate(segments) if seg[2] == layer]
        if not mine or mine != list(range(mine[0], mine[0] + len(mine))):
            return None
        start = segments[mine[0]][0]
        end = segments[mine[-1]][0] + segments[mine[-1]][1]
        if start != at:
            return None
        spans.append((mine[0], len(mine), start, end - start))
        at = end
    return tuple(spans) if at == total else None
