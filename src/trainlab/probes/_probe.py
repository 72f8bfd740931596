"""The probe protocol: a named measurement with a cadence, and the context it reads.

A probe returns numbers and stores nothing. Everything a probe may need about the current
step is in :class:`ProbeContext`; quantities that several probes need in the same step (a
Hessian-vector-product closure, the flat gradient) are computed once through
``ctx.cached(key, fn)``.

A probe that can reuse the training step's own forward and backward passes (instead of
recomputing them) may also implement :meth:`Probe.attach` and :meth:`Probe.arm`: the monitor
attaches it to the model once, arms it for the steps where it is due, and removes the
returned handle when the run ends.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

import torch
from torch import nn

from trainlab.errors import TrainlabError
from trainlab.registry import EntryInfo, Registry

Measurement = dict[str, "torch.Tensor | float"]
LOG = logging.getLogger("trainlab")


class Table(NamedTuple):
    """A family of scalars of one measurement held as the vector a probe computed them in:
    entry ``i`` is the metric ``names[i]`` (none where ``names[i]`` is None), its value
    ``values[i]`` (a 1-D tensor), or ``values[row, i]`` when ``row`` is given (``values``
    a 2-D tensor whose other rows hold other families: a monitor reads the whole tensor
    once for all the tables that share it). See :class:`PackedProbe`."""

    names: tuple[str | None, ...]
    values: torch.Tensor
    row: int | None = None

    def vector(self) -> torch.Tensor:
        """The family's 1-D vector of values."""
        return self.values if self.row is None else self.values[self.row]


Packed = dict[str, "torch.Tensor | float | Table"]
"""What :meth:`PackedProbe.measure_packed` returns: a :data:`Measurement` whose values may
also be :class:`Table` (each under a key of its own that names no metric, e.g. its family
``"grad_norm/*"``)."""


def unpacked(out: Packed) -> Measurement:
    """``out`` with each :class:`Table` replaced by its named entries (0-d tensors), in
    order."""
    flat: Measurement = {}
    for key, value in out.items():
        if isinstance(value, Table):
            flat.update((n, x) for n, x in zip(value.names, value.vector().unbind())
                        if n is not None)
        else:
            flat[key] = value
    return flat


class Handle(Protocol):
    """What :meth:`Probe.attach` returns: ``remove()`` detaches (as torch's hook handles)."""

    def remove(self) -> None: ...


@dataclass
class ProbeContext:
    """What a probe sees at step ``step``: after the backward pass of that step's batch and
    before the optimizer step (where :class:`~trainlab.train.Monitor` calls probes).

    Attributes:
        step: the number of updates applied so far (0-based); every measurement describes
            the parameters after ``step`` updates.
        model: the model (probes must leave it exactly as found: mode, weights, grads).
            ``p.grad`` holds the gradient of this step's batch at the current parameters,
            about to be used for update ``step + 1``.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``.
        batch: ``(inputs, targets)`` of this step.
        loss: the batch loss at the current parameters (a detached tensor).
        optimizer: the optimizer (its state may be read, never written); its state reflects
            the ``step`` updates applied so far.
        lr: the learning rate of the coming update (first param group).
        init_params: parameters at step 0 (detached copies), by name.
        prev_params: parameters before the last update (after ``step - 1`` updates), when
            some due probe asked for them (``Probe.needs_prev_params``), else None.
        task: the :class:`~trainlab.tasks.Task`, when there is one (for evaluation).
        generator: randomness for stochastic probes (seeded from the run's seed).
        cache: per-step cache shared by the probes measured in this step (the monitor seeds
            ``"params"``, the dict :meth:`params` returns, the same dict object from step to
            step while the trainable parameters' names, objects and storage stay the same
            (a probe may key on its identity), ``"trainable"``, the
            ``(name, parameter)`` pairs of the trainable parameters, which :meth:`grads`
            then reads instead of walking the model, and ``"tree"``, the model's
            :class:`~trainlab.module_tree.ModuleTree`, checked at this step: a probe keys
            what it derives from the tree on its ``generation``).
        run_cache: kept by the monitor from one step of a run to the next (emptied when it
            loads a checkpoint); outside a monitor, a fresh dict per context. For values that
            stay valid across steps (e.g. norms of the initial parameters): each entry's
            owner keys it and checks before every use that it still applies. The monitor's
            ``prev_params`` is always a copy of the parameters that the probes of the step
            before saw (``params()``), taken after they ran.
        notes: why a probe measured nothing, or measured less than it names, at this step
            (``{probe name: reason}``), filled by :meth:`skip` and :meth:`note`; the monitor
            moves them into the run record (one warning per probe and run).
        warn: log each note as a warning on the ``trainlab`` logger when it is made (the
            default, for a probe used by hand; the monitor sets it False and warns once per
            probe and run itself).
        dist: under data-parallel training, the process group
            (:class:`~trainlab.train.distributed.Distributed`) for the probes that reduce
            across ranks themselves (``ddp="reduced"``); ``batch`` is then this rank's
            shard. None in a single process and for the other probes (whose ``batch`` is the
            global one).
    """

    step: int
    model: nn.Module
    loss_fn: Callable[[torch.Tensor, Any], torch.Tensor]
    batch: tuple[Any, Any]
    loss: torch.Tensor | None = None
    optimizer: torch.optim.Optimizer | None = None
    lr: float | None = None
    init_params: dict[str, torch.Tensor] = field(default_factory=dict)
    prev_params: dict[str, torch.Tensor] | None = None
    task: Any = None
    generator: torch.Generator | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    run_cache: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    warn: bool = True
    dist: Any = None

    def note(self, probe: str, reason: str) -> None:
        """Record why ``probe`` measured less than usual at this step (see ``notes``)."""
        self.notes[probe] = reason
        if self.warn:
            LOG.warning("probe %r at step %d: %s", probe, self.step, reason)

    def skip(self, probe: str, reason: str) -> Measurement:
        """Record why ``probe`` measures nothing at this step and return the empty
        measurement: ``return ctx.skip(self.name, "why")``."""
        self.note(probe, reason)
        return {}

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` computed once per step and shared between probes."""
        try:  # (one dict lookup when it is there, as it mostly is)
            return self.cache[key]
        except KeyError:
            value = self.cache[key] = fn()
            return value

    def examples(self) -> int:
        """The number of examples of the (global) batch: under data-parallel training that
        of all ranks together, else that of ``batch``."""
        if "examples" not in self.cache:
            from trainlab.probes._outputs import batch_size

            self.cache["examples"] = batch_size(self.batch[0])
        return self.cache["examples"]

    def shard_weight(self) -> float:
        """This rank's share of the global batch's examples, ``len(batch) / examples()``
        (1.0 in one process): the weight of this rank's term in a sum over ranks that gives
        the global batch's mean (exact also for shards of unequal sizes)."""
        if self.dist is None:
            return 1.0
        from trainlab.probes._outputs import batch_size

        return batch_size(self.batch[0]) / self.examples()

    def params(self) -> dict[str, torch.Tensor]:
        """Current trainable parameters by name (detached views, not copies; one dict shared
        by the probes of this step: read it, never modify it)."""
        try:  # the monitor's, or made by an earlier call (no closure made then)
            return self.cache["params"]
        except KeyError:
            return self.cached("params", lambda: {
                n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad})

    def grads(self) -> dict[str, torch.Tensor]:
        """Current gradients by name (parameters without a gradient are skipped; detached
        when they carry a graph; one dict shared by the probes of this step: read it, never
        modify it)."""
        return self.cached("grads", self._grads)

    def _grads(self) -> dict[str, torch.Tensor]:
        named = self.cache.get("trainable")
        if named is None:
            named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        grads = {n: p.grad for n, p in named}
        return {n: g.detach() if g.requires_grad else g for n, g in grads.items()
                if g is not None}


class Probe(ABC):
    """Base class: subclasses set ``name`` and implement :meth:`measure`.

    Args:
        every: measure at steps where ``step % every == 0`` (and at the last step).

    Subclasses may set ``needs_prev_params = True`` (the monitor then snapshots the
    parameters before each update that leads to a due step) and keep state across steps through
    :meth:`state_dict` / :meth:`load_state_dict`, which checkpoints save. A probe that
    records what it needs during the training step's own forward/backward implements
    :meth:`attach` and :meth:`arm`; :meth:`measure` must still work without them (a probe
    used outside a monitor, or a step its hooks could not record).
    """

    name: str = ""
    needs_prev_params: bool = False
    uses_generator: bool = True
    """False for a probe that never draws from ``ctx.generator``: the monitor then does not
    save the generator's state before measuring it (to roll back after a failure)."""
    cadence_changes: int = 0
    """How many times the ``every`` of any probe was set (monitors keep their schedule of
    quiet steps while it stays the same)."""

    def __init__(self, every: int = 1):
        from trainlab.errors import check_range

        check_range("every", every, low=1, owner=f"probe {self.name!r}")
        self.every = int(every)

    @property
    def every(self) -> int:
        """The cadence: :meth:`due` at steps ``step % every == 0``; a new value takes effect
        at the next step."""
        return self._every

    @every.setter
    def every(self, value: int) -> None:
        self._every = value
        Probe.cadence_changes += 1

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def setup(self, ctx: ProbeContext) -> None:  # noqa: B027  (optional hook)
        """Called once, at the first step measured, before :meth:`measure`."""

    def attach(self, model: nn.Module) -> Handle | None:
        """Optional: register hooks on ``model`` that record, while armed, what
        :meth:`measure` needs from the training step's forward and backward passes. Returns
        a handle whose ``remove()`` detaches every hook (and drops what was recorded), or
        None when nothing was attached (the default). Hooks must not change any number the
        model computes."""
        del model
        return None

    def arm(self, due: bool) -> None:  # noqa: B027  (optional hook)
        """Optional, for attached probes: ``arm(True)`` starts recording the next forward and
        backward pass (the monitor calls it at the end of step ``k`` when step ``k + 1`` is
        due); ``arm(False)`` stops recording and keeps what was recorded for
        :meth:`measure` (the monitor calls it at the end of a step when the next one is not
        due; at the start of every step it calls :meth:`pause`, so that probes' own forward
        passes are never recorded). Between a step that ended with ``arm(False)`` and the
        one before the probe's next due step the monitor calls neither :meth:`pause` nor
        :meth:`arm` (for a probe that keeps the default cadence, ``step % every == 0``):
        on a disarmed probe both must do nothing."""

    def pause(self) -> None:
        """Optional, for attached probes: stop recording and keep what was recorded, as
        ``arm(False)``, but leave the hooks in place; the next :meth:`arm` call decides
        whether they stay (``arm(True)``: recording resumes on the same hooks) or go
        (``arm(False)``). The monitor calls it at the start of every step, so that at
        consecutive due steps the hooks are not removed and registered again. The default
        is ``arm(False)``."""
        self.arm(False)

    @abstractmethod
    def measure(self, ctx: ProbeContext) -> Measurement:
        """Return named scalars (tensors or floats) for this step."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(every={self.every})"


class PackedProbe(Probe):
    """A probe that computes families of its scalars as vectors (per-tensor norms):
    subclasses implement :meth:`measure_packed`, which may return such a family as one
    :class:`Table`; :meth:`measure` returns the same numbers one 0-d tensor per metric.

    The monitor calls :meth:`measure_packed` (unless a subclass overrides :meth:`measure`)
    and reads each table with one ``tolist()``: splitting a vector into 0-d tensors and
    reading each costs about 1.5 us per entry on the CPU, which at every step of the
    ``economy`` preset of a small model is a few percent of the training step. The values
    recorded are the same, to the bit.
    """

    def measure(self, ctx: ProbeContext) -> Measurement:
        return unpacked(self.measure_packed(ctx))

    @abstractmethod
    def measure_packed(self, ctx: ProbeContext) -> Packed:
        """What :meth:`measure` returns, families of scalars possibly left as
        :class:`Table`."""


def packs(probe: Probe) -> bool:
    """Whether ``probe``'s measurement may be read packed (:class:`PackedProbe` whose
    :meth:`~Probe.measure` is the unpacking one, neither a subclass's own nor one set on
    the instance)."""
    return type(probe).measure is PackedProbe.measure and "measure" not in vars(probe)


@dataclass(frozen=True)
class ProbeInfo(EntryInfo):
    """What a probe entry declares about its output, for reports and checks.

    Attributes:
        metrics: the names :meth:`Probe.measure` returns; ``"prefix/*"`` stands for a family
            (one series per parameter tensor or layer, or named parts such as quantiles).
            A contract test checks every measured name against them.
        plot: how the run report draws the metrics: ``"curves"`` (scalars in one panel, each
            family in its own), ``"log-curves"`` (the same, log y), ``"heatmap"`` (each family as
            a layers x steps map, log colour), ``"edge-of-stability"`` (the first metric
            against ``2/lr``), or ``""`` (not drawn by the generic report section).
        title: the report section's heading (default: the probe's name).
        ddp: how the probe runs under data-parallel training (:mod:`trainlab.train.distributed`):
            ``"replicated"`` (it reads only parameters, all-reduced gradients, the global
            loss, optimizer state or the task: the same on every rank), ``"reduced"`` (it
            reduces across the ranks itself, through ``ctx.dist``: averaged
            Hessian-vector products, summed per-sample statistics), ``"global-batch"`` (the
            default: it is handed the global batch gathered from the ranks) or
            ``"unsupported"`` (skipped under DDP, with a warning).
        compare: the metrics a comparison of runs draws, one panel each, in this order (a
            family ``"prefix/*"`` gives one panel per member the runs recorded); ``None``: the
            scalar metrics (names without ``*``). Each must be one of ``metrics``.
    """

    metrics: tuple[str, ...] = ()
    plot: Literal["", "curves", "log-curves", "heatmap", "edge-of-stability"] = ""
    title: str = ""
    ddp: Literal["replicated", "reduced", "global-batch", "unsupported"] = "global-batch"
    compare: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.compare or () if m not in self.metrics]
        if unknown:
            raise TrainlabError(f"ProbeInfo: compare names {unknown}, which are not among "
                                f"its metrics {list(self.metrics)}")

    @property
    def compared(self) -> tuple[str, ...]:
        """What a comparison of runs draws (``compare``, or the scalar metrics)."""
        if self.compare is not None:
            return self.compare
        return tuple(m for m in self.metrics if "*" not in m)


PROBES: Registry[type[Probe]] = Registry("probe", info=ProbeInfo)
