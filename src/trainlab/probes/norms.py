"""Gradient and weight norms, global and per parameter tensor.

The norm probes (these, and ``rotation``) run at every step of the ``economy`` preset, where
every tensor operation counts: the per-tensor norms they need in a step (gradients, weights,
distances from the initial and from the previous parameters) come from one pass in C over
every tensor (:mod:`trainlab.probes.fused`, within its stated tolerance of the eager path),
or, where that does not apply or is turned off, from one fused ``torch._foreach_norm`` call;
either way they are shared through the step's context (:func:`param_norms`). On the fused
path the same C call also forms the per-tensor rotations and update ratios, the probes'
global norms come from one ``vector_norm`` over the rows of its table
(:attr:`ParamNorms.totals`, read into Python floats once a step), the per-tensor rows are
handed to the monitor as :class:`Table` entries over the whole table, and
the call's checks are kept from one step to the next
(:class:`~trainlab.probes.fused.NormsPlan`): every recorded number is the eager formulas'
to the bit, tested.
"""

from __future__ import annotations

import operator
from functools import lru_cache
from itertools import repeat

import torch

from trainlab.probes import fused
from trainlab.probes._probe import (
    PROBES,
    Measurement,
    Packed,
    PackedProbe,
    ProbeContext,
    Table,
)
from trainlab.probes._scalar_bits import quotient, rounding

_NORM_DTYPES = (torch.float32, torch.float64)


def tensor_norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """L2 norm of each tensor (0-d tensors, one fused call; half precision in float32)."""
    return list(torch._foreach_norm([t if t.dtype in _NORM_DTYPES else t.float()
                                     for t in tensors]))


@lru_cache(maxsize=256)
def metric_names(prefix: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """``prefix/name`` for each name (cached: the same names come back every step)."""
    return tuple(f"{prefix}/{n}" for n in names)


_FIELDS = ("grad", "weight", "init_dist", "init", "prev_dist", "prev", "rotation", "ratio")
""":class:`ParamNorms`' per-tensor vectors, in the order of the rows of the fused table
(:data:`trainlab.probes.fused.ROWS`)."""

_ROW = {f: i for i, f in enumerate(_FIELDS)}

_new, _set = object.__new__, object.__setattr__


class ParamNorms:
    """Per-tensor L2 norms at one step, each a vector over the trainable parameters
    (``names``, in the model's order). Read-only.

    Attributes:
        weight: :math:`\\|\\theta_k\\|`.
        grad: :math:`\\|g\\|`, when every parameter has a gradient (else None).
        init_dist, init: :math:`\\|\\theta_k - \\theta_0\\|` and :math:`\\|\\theta_0\\|`, when
            the initial parameters are known.
        prev_dist, prev: :math:`\\|\\theta_k - \\theta_{k-1}\\|` and
            :math:`\\|\\theta_{k-1}\\|`, when the previous parameters are known.
        rotation, ratio: on the fused path, ``rotation``'s cosine distances and
            ``update-ratio``'s ratios, formed in C from these norms by the probes' own
            formulas (:func:`trainlab.probes.fused.tensor_norms`: the same bits), when
            their norms are known; else None (the probes form them with torch).
        totals: on the fused path, the L2 norm of each row of the fused table (in the order
            of :data:`trainlab.probes.fused.ROWS`; one ``vector_norm`` over the rows,
            the bits of one call per row, tested), else None.
        table: on the fused path, that ``(8, k)`` table (else None); the vectors above are
            then its rows, each made (a view) the first time it is read: the probes hand
            the rows to the monitor as :class:`Table` entries over the whole table
            (:meth:`entries`), which it reads at once, so that most steps make no view.
    """

    __slots__ = ("names", "table", "totals", "_present", "_floats", *_FIELDS)

    def __init__(self, names: tuple[str, ...], weight: torch.Tensor,
                 grad: torch.Tensor | None = None, init_dist: torch.Tensor | None = None,
                 init: torch.Tensor | None = None, prev_dist: torch.Tensor | None = None,
                 prev: torch.Tensor | None = None, rotation: torch.Tensor | None = None,
                 ratio: torch.Tensor | None = None, totals: torch.Tensor | None = None):
        for field, value in zip(_FIELDS, (grad, weight, init_dist, init, prev_dist, prev,
                                          rotation, ratio)):
            object.__setattr__(self, field, value)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "totals", totals)
        object.__setattr__(self, "table", None)
        object.__setattr__(self, "_floats", None)

    @classmethod
    def of_table(cls, names: tuple[str, ...], table: torch.Tensor,
                 present: tuple[bool, ...], totals: torch.Tensor) -> ParamNorms:
        """The norms of the fused ``table`` (rows in the order of ``_FIELDS``), the rows
        whose ``present`` entry is False read as None."""
        out = _new(cls)
        _set(out, "names", names)
        _set(out, "table", table)
        _set(out, "totals", totals)
        _set(out, "_present", present)
        _set(out, "_floats", None)
        return out

    def __getattr__(self, field: str) -> torch.Tensor | None:
        """A row of :attr:`table` not read yet (only fields of ``_FIELDS`` get here)."""
        row = _ROW.get(field)
        if row is None:
            raise AttributeError(field)
        value = self.table[row] if self._present[row] else None
        object.__setattr__(self, field, value)
        return value

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ParamNorms is read-only ({name!r})")

    def has(self, family: str) -> bool:
        """Whether this vector (a field name) is known (not None), without making a view
        of the table's rows."""
        if self.table is not None:
            return self._present[_ROW[family]]
        return getattr(self, family) is not None

    def total(self, family: str) -> float:
        """On the fused path, the L2 norm of the family's vector (a field name) as a Python
        float: its entry of :attr:`totals`, the exact value (the totals are read by one
        ``tolist()`` per step, for all the probes)."""
        floats = self._floats
        if floats is None:
            floats = self.totals.tolist()
            object.__setattr__(self, "_floats", floats)
        return floats[_ROW[family]]

    def entries(self, names: tuple[str | None, ...], family: str) -> Table:
        """The family's vector (a field name, known) as a :class:`Table` of ``names``: on
        the fused path a row of :attr:`table`."""
        if self.table is not None:
            return Table(names, self.table, _ROW[family])
        return Table(names, getattr(self, family))


SNAPSHOT_OFFER = "snapshot_offer"
"""``ctx.run_cache`` key: ``(step, params, buffers)``, set by the monitor at a step whose
parameters it keeps for the next one: :func:`param_norms` at that step (``params`` the
context's dict of parameters) copies each parameter into its buffer in the fused norm pass."""

SNAPSHOT_WRITTEN = "snapshot_written"
"""``ctx.run_cache`` key: ``(step, buffers, versions)`` once the fused pass has written the
offered buffers, with the parameters' ``_version`` counters at that time (the monitor
copies again when a parameter has changed in place since)."""


def param_norms(ctx: ProbeContext) -> ParamNorms | None:
    """The step's :class:`ParamNorms`, computed once per step (one call of
    :func:`trainlab.probes.fused.tensor_norms`; else, eagerly, one subtraction and one norm
    call for all of them) and shared by the probes; None without parameters.

    Inside a monitor (``ctx.run_cache``) two of them are not recomputed: the norms of the
    initial parameters, kept while the initial tensors (objects and versions) stay the same,
    and the norms of the previous parameters, which are the weight norms of the step before
    when that step computed them (the monitor's ``prev_params`` is a copy of the parameters
    that step measured). Either way the values are the same, to the bit. When the monitor
    offers its snapshot buffers (:data:`SNAPSHOT_OFFER`), the fused pass, which reads every
    parameter anyway, writes the snapshot too (an exact copy; :data:`SNAPSHOT_WRITTEN`).
    """
    return ctx.cached("param_norms", lambda: _param_norms(ctx))


def _param_norms(ctx: ProbeContext) -> ParamNorms | None:
    params = ctx.params()
    if not params:
        return None
    names = tuple(params)
    now = list(params.values())
    trainable = ctx.cache.get("trainable")  # the monitor's pairs, in the order of params
    if trainable is not None and len(trainable) == len(now):
        # the fused pass reads the gradients' data only: no dict, no detach
        grads_list = list(map(_GRAD, map(_SECOND, trainable)))
        if any(map(operator.is_, grads_list, repeat(None))):
            grads_list = []
    else:
        grads_list = _grads_list(ctx, names)
    memo = ctx.run_cache
    init, init_norms = _initial(memo, ctx.init_params, names)
    prev = _in_order(ctx.prev_params, names) if ctx.prev_params is not None else []
    kept = memo.get("weight_norms")
    prev_norms = (kept[2] if kept is not None and prev and kept[0] == ctx.step - 1
                  and kept[1] == names else None)  # a vector, or the fused table before
    k, i, p = len(now), len(init), len(prev)
    offer = memo.get(SNAPSHOT_OFFER)
    copy_to = offer[2] if offer is not None and offer[0] == ctx.step and offer[1] is params \
        else None
    plans = memo.get("norm_plans")
    if plans is None:
        plans = memo["norm_plans"] = []
    want = _fused_want(bool(grads_list), bool(i), init_norms is None, bool(p),
                       prev_norms is None)
    table = fused.tensor_norms(now, grads_list, init, prev, want, copy_to, plans,
                               init_norms, prev_norms)
    if table is not None:  # one pass in C (trainlab.probes.fused: its tolerance)
        if copy_to is not None:  # the parameters were copied too, at these versions
            memo[SNAPSHOT_WRITTEN] = (ctx.step, copy_to, list(map(_VERSION, now)))
        out = ParamNorms.of_table(names, table, _present(bool(grads_list), bool(i), bool(p)),
                                  torch.linalg.vector_norm(table, dim=1))
        if i and init_norms is None:
            _keep_initial(memo, names, init, out.init)
        memo["weight_norms"] = (ctx.step, names, table)  # its weight row: no view made
        return out
    grads_list = _grads_list(ctx, names)  # detached, for torch's norms
    if prev_norms is not None and prev_norms.dim() == 2:  # the fused table of the step before
        prev_norms = prev_norms[_ROW["weight"]]
    wi = 0 if init_norms is not None else i  # norms to compute
    wp = 0 if prev_norms is not None else p
    bases = [*init, *prev]
    diffs = _differences(memo, now * (len(bases) // len(now)), bases) if bases else []
    g, w, di, w_init, dp, w_prev = torch.stack(tensor_norms(
        [*grads_list, *now, *diffs[:i], *init[:wi], *diffs[i:], *prev[:wp]])
    ).split([len(grads_list), k, i, wi, p, wp])
    if init_norms is None and i:
        init_norms = w_init
        _keep_initial(memo, names, init, w_init)
    if prev_norms is None and p:
        prev_norms = w_prev
    memo["weight_norms"] = (ctx.step, names, w)
    return ParamNorms(names, w, g if grads_list else None, di if i else None, init_norms,
                      dp if p else None, prev_norms)


_VERSION = operator.attrgetter("_version")
_GRAD = operator.attrgetter("grad")
_SECOND = operator.itemgetter(1)


def _in_order(tensors: dict[str, torch.Tensor], names: tuple[str, ...]
              ) -> list[torch.Tensor]:
    """``tensors[n]`` for each of ``names``, or an empty list when one is missing."""
    try:
        return list(map(tensors.__getitem__, names))
    except KeyError:
        return []


def _initial(memo: dict, init_params: dict[str, torch.Tensor], names: tuple[str, ...]
             ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """The initial parameters in the order of ``names`` (an empty list when one is
    missing) and their norms when kept from an earlier step (:func:`_keep_initial`) for
    the same names and tensors (``init_params`` holding the same objects) at the same
    ``_version``, else None. The kept list is reused then (no list built)."""
    kept = memo.get("init_norms")  # ((names, tensors, versions), norms)
    if kept is not None:
        (kept_names, tensors, versions), norms = kept
        if (kept_names == names and all(map(operator.is_, map(init_params.get, names), tensors))
                and list(map(_VERSION, tensors)) == versions):
            return tensors, norms
    return _in_order(init_params, names), None


def _keep_initial(memo: dict, names: tuple[str, ...], init: list[torch.Tensor],
                  norms: torch.Tensor) -> None:
    """Keep the norms of the initial parameters ``init`` (in the order of ``names``) with
    what :func:`_initial` checks them by."""
    memo["init_norms"] = ((names, init, list(map(_VERSION, init))), norms)


def _grads_list(ctx: ProbeContext, names: tuple[str, ...]) -> list[torch.Tensor]:
    """The gradients (detached) in the order of ``names`` when every parameter has one,
    else an empty list."""
    grads = ctx.grads()
    return list(grads.values()) if tuple(grads) == names else []


@lru_cache(maxsize=16)
def _present(grads: bool, init: bool, prev: bool) -> tuple[bool, ...]:
    """Which rows of the fused table :class:`ParamNorms` gives (the others read None)."""
    return (grads, True, init, init, prev, prev, init, prev)


@lru_cache(maxsize=64)
def _fused_want(grads: bool, init: bool, init_unknown: bool, prev: bool, prev_unknown: bool
                ) -> tuple[str, ...]:
    """The families the fused pass computes: the weight norms, the gradient norms when
    every parameter has a gradient, the distances (and the norms of the initial / previous
    parameters when not known already) and, from them, the rotations and update ratios."""
    on = (grads, True, init, init and init_unknown, prev, prev and prev_unknown, init, prev)
    return tuple(f for f, wanted in zip(fused.ROWS, on) if wanted)


KEPT_DIFFERENCE_NUMEL = 65536
"""Tensors of at least this many entries get their difference written into a kept tensor
(:func:`_differences`); smaller ones are subtracted by one ``torch._foreach_sub`` call."""


def _differences(memo: dict, now: list[torch.Tensor], bases: list[torch.Tensor]
                 ) -> list[torch.Tensor]:
    """``now[i] - bases[i]`` for every ``i``, the numbers of ``torch._foreach_sub`` (to the
    bit, tested). The large tensors' differences are written by ``torch.sub(..., out=)``
    into tensors kept in ``memo`` (the run's cache) from one step to the next: fresh memory
    costs page faults at every step, and at 4M entries a subtraction into a new tensor
    took twice as long as into a kept one (``_foreach_sub`` has no variant that writes
    into given tensors without an extra copy). The small ones, where the cost is the
    per-call overhead, go through one ``_foreach_sub``."""
    big = [i for i, t in enumerate(now) if t.numel() >= KEPT_DIFFERENCE_NUMEL]
    small = [i for i, t in enumerate(now) if t.numel() < KEPT_DIFFERENCE_NUMEL]
    out: list[torch.Tensor] = [now[0]] * len(now)
    if small:
        for i, d in zip(small, torch._foreach_sub([now[i] for i in small],
                                                  [bases[i] for i in small])):
            out[i] = d
    if big:
        key = [(i, now[i].shape, torch.promote_types(now[i].dtype, bases[i].dtype),
                now[i].device) for i in big]
        kept = memo.get("diff_buffers")
        if kept is None or kept[0] != key:
            kept = memo["diff_buffers"] = (key, [torch.empty(shape, dtype=dtype, device=dev)
                                                 for _, shape, dtype, dev in key])
        for i, buf in zip(big, kept[1]):
            out[i] = torch.sub(now[i], bases[i], out=buf)
    return out


def _norms(prefix: str, tensors: dict[str, torch.Tensor]) -> Measurement:
    if not tensors:
        return {}
    per = tensor_norms(list(tensors.values()))
    out: Measurement = {prefix: torch.linalg.vector_norm(torch.stack(per))}
    out.update(zip(metric_names(prefix, tuple(tensors)), per))
    return out


def _from_table(prefix: str, table: ParamNorms, family: str) -> Packed:
    """``prefix``: the L2 norm of the family's vector (a float from ``table.totals`` on the
    fused path); ``prefix/<name>``: its entries."""
    entries = table.entries(metric_names(prefix, table.names), family)
    total = (table.total(family) if table.totals is not None
             else torch.linalg.vector_norm(entries.values))
    return {prefix: total, f"{prefix}/*": entries}


def ratio_total(d: float, w: float, dtype: torch.dtype) -> float:
    """``d / max(w, 1e-30)`` as torch forms it from two 0-d tensors of ``dtype`` (float32 or
    float64) holding ``d`` and ``w`` (``clamp_min`` then the division,
    :func:`~trainlab.probes._scalar_bits.quotient`; tested against torch, subnormal and
    overflowing quotients included)."""
    tiny = rounding(dtype)(1e-30)
    return quotient(d, tiny if w < tiny else w, dtype)


class GradNorm(PackedProbe):
    """L2 norm of the gradient of this step, in total and for each parameter tensor."""

    name = "grad-norm"
    uses_generator = False

    def measure_packed(self, ctx: ProbeContext) -> Packed:
        table = param_norms(ctx)
        if table is not None and table.has("grad"):
            return _from_table("grad_norm", table, "grad")
        return _norms("grad_norm", ctx.grads())  # some parameters have no gradient


class WeightNorm(PackedProbe):
    """L2 norm of the parameters, in total and for each parameter tensor."""

    name = "weight-norm"
    uses_generator = False

    def measure_packed(self, ctx: ProbeContext) -> Packed:
        table = param_norms(ctx)
        return {} if table is None else _from_table("weight_norm", table, "weight")


class UpdateRatio(PackedProbe):
    r"""Size of the last update relative to the weights it changed,
    :math:`\|\theta_k - \theta_{k-1}\| / \|\theta_{k-1}\|`, in total and per tensor (a common
    health signal: ~1e-3 for Adam), and the update norm ``update_norm``."""

    name = "update-ratio"
    uses_generator = False
    needs_prev_params = True

    def measure_packed(self, ctx: ProbeContext) -> Packed:
        table = param_norms(ctx)
        if table is None or not (table.has("prev_dist") and table.has("prev")):
            return {}
        if table.table is not None:  # the ratios formed in C (same bits)
            names = metric_names("update_ratio", table.names)
            return {"update_ratio/*": table.entries(names, "ratio"),
                    "update_ratio": ratio_total(table.total("prev_dist"), table.total("prev"),
                                                table.table.dtype),
                    "update_norm": table.total("prev_dist")}
        d, w = table.prev_dist, table.prev
        names = metric_names("update_ratio", table.names)
        out: Packed = {"update_ratio/*": Table(names, d.div(w.clamp_min(1e-30)))}
        total_d = torch.linalg.vector_norm(d)
        out["update_ratio"] = total_d / torch.linalg.vector_norm(w).clamp_min(1e-30)
        out["update_norm"] = total_d
        return out


PROBES.register("grad-norm", GradNorm, ddp="replicated",
                metrics=("grad_norm", "grad_norm/*"), plot="heatmap",
                title="Per-layer gradient norms",
                summary="global and per-tensor gradient L2 norm")
PROBES.register("weight-norm", WeightNorm, ddp="replicated",
                metrics=("weight_norm", "weight_norm/*"), plot="curves", title="Weight norms",
                summary="global and per-tensor weight L2 norm")
PROBES.register("update-ratio", UpdateRatio, ddp="replicated",
                metrics=("update_ratio", "update_norm", "update_ratio/*"),
                plot="log-curves", title="Update-to-weight ratio",
                summary="update-to-weight norm ratio of the last step, global and per tensor")
