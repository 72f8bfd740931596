"""Attach probes, the run store and reports to any training loop, the trainer's or your own.

Example (your own loop)::

    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, probes="standard",
                  every=50, total_steps=T, store=RunStore())
    for step in range(T):
        opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward()
        mon.step(loss, (x, y))          # after backward, before the update
        opt.step()
    mon.finish()

Convention: ``step`` counts updates already applied. At step ``k`` every measurement describes
the parameters after ``k`` updates; ``loss`` is the batch loss there and the gradients are the
ones just computed at those parameters, about to be used for update ``k + 1``.

Hooks: probes that can reuse the training step's own forward and backward passes (``grad-noise``
records the inputs and output gradients of the ``nn.Linear`` layers) are attached to the
model when the monitor is built and detached by :meth:`Monitor.finish` (or on leaving a
``with`` block, also after an exception). They record only on the forward/backward pass that
precedes a step where the probe is due, and change no value the model computes.

A probe never stops the training: one that cannot measure on this model (it raises one of
:data:`PROBE_ERRORS`, or returns nothing and says why through ``ctx.skip``) is recorded with
its reason, and the other probes go on. The first reason of each probe is logged once per run
as a warning on the ``trainlab`` logger and kept in :attr:`Monitor.skipped` (probes that
measured nothing at some step) or :attr:`Monitor.notes` (probes that measured less than they
name, e.g. after a fallback); :meth:`Monitor.summary` puts both in the run record
(``skipped_probes``, ``probe_notes``), which the run report shows. A probe that raised
leaves no trace: its state, the probes' generator and the cache entries it added are rolled
back.

Data-parallel training: a Monitor built in every process of a ``torch.distributed`` job (the
model may be the :class:`~torch.nn.parallel.DistributedDataParallel` wrapper; each process
passes its own shard to :meth:`Monitor.step`) records the numbers of the global batch, as one
process training on it would, and only rank 0 writes the store and the sinks (see
:mod:`trainlab.train.distributed` for how each probe is made global). Every rank agrees on
whether each probe measured (:mod:`trainlab.train.probe_agreement`): a probe that raises on
some ranks only is skipped on every rank, with the failing rank's reason in the run record,
and no rank is left waiting in a collective the failing rank will never enter.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from trainlab.errors import ConfigError, TrainlabError
from trainlab.integrations import Sink
from trainlab.probes import Probe, ProbeContext, build_probes, fused
from trainlab.probes._outputs import batch_size, loss_function
from trainlab.probes._probe import Handle, Packed, Table, packs
from trainlab.probes.norms import SNAPSHOT_OFFER, SNAPSHOT_WRITTEN
from trainlab.store import RunStore
from trainlab.train import probe_agreement as agreement
from trainlab.train.distributed import current, unwrap
from trainlab.train.trainable import TrainableParams

LOG = logging.getLogger("trainlab")
PROBE_ERRORS: tuple[type[BaseException], ...] = (
    TrainlabError, TypeError, ValueError, RuntimeError, AttributeError, KeyError, IndexError)
"""What a probe's ``measure`` may raise without stopping the run (with ``on_probe_error=
"record"``): a model or optimizer the probe cannot measure (ConfigError), an output of another
type (TypeError, AttributeError, KeyError, IndexError), an operation without the derivative a
probe needs (RuntimeError, NotImplementedError)."""


class Monitor:
    """Runs probes at their cadence and records every number.

    The monitor registers hooks on ``model`` for its lifetime (see :meth:`Probe.attach`:
    for instance, ``grad-noise`` records the ``nn.Linear`` layers' inputs and output
    gradients during the training step's forward/backward before a step where it is due)
    and removes every one of them in :meth:`finish`, which the trainer also calls when a
    run fails; a ``with Monitor(...) as mon:`` block finishes (and detaches) on exit, also
    after an exception. The hooks change no number the model computes, and nothing else of
    the model is changed.

    Args:
        model: the model being trained.
        loss_fn: ``loss_fn(outputs, targets)``, used by curvature probes; it receives the
            model's output as the model returns it (tensor, dict, ``ModelOutput``, tuple).
            ``None`` when the model computes its own loss: batches are then
            ``((arg, ...), targets)``, the model is called as ``model(*args)`` and returns the
            scalar loss or an output with a ``loss`` entry.
        optimizer: read (never written) by probes that need its state or lr.
        probes: a probe spec (``"standard"``, ``"grad-norm,sharpness@10"``) or probe objects.
        every: default cadence of the probes.
        probe_params: ``{probe name: kwargs}``.
        total_steps: the final step, always measured (optional).
        store, run_id: where to record; with a store and no run id a new run is created
            from ``config``/``name``/``seed``. Without a store, numbers stay in
            :attr:`history` only.
        task: the task, for evaluation probes.
        seed: seeds the generator handed to stochastic probes.
        flush_every: write buffered rows to the store every this many steps.
        on_probe_error: ``"record"`` (default: a probe that raises one of
            :data:`PROBE_ERRORS` is recorded as skipped at that step, with the reason, and
            the run goes on) or ``"raise"`` (the error propagates: for debugging a probe).
        flush_seconds: and at least this often (seconds; 0: every step), so a killed
            process loses seconds of metrics, not a buffer's worth.
        sinks: more places every recorded value goes to as it is recorded (objects with
            ``write(step, {name: value})`` and ``close()``, see
            :mod:`trainlab.integrations`); closed by :meth:`finish`.
        tensorboard: a directory: shorthand for adding
            ``trainlab.integrations.tensorboard.TensorBoardSink(tensorboard)`` to ``sinks``.

    Between two steps where something is to be done (a probe due; the step before, where
    the parameters are kept for probes of the last update and hooks are armed), a step
    records the loss and the lr and nothing else, at about the cost of reading them: the
    monitor works these quiet steps out from the probes' cadences (``every`` and
    ``total_steps``, followed from the next step when either is set anew; a probe with its
    own ``due`` is asked at every step).

    Under ``torch.distributed`` (a process group of more than one process, found when the
    monitor is built) every rank builds its monitor the same way; ranks other than 0 get
    no store, run id or sinks (theirs are ignored, with a debug message) and keep
    :attr:`history` only, which holds the same global numbers as rank 0's.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        loss_fn: Callable[[Any, Any], torch.Tensor] | None,
        optimizer: torch.optim.Optimizer | None = None,
        probes: str | list[Probe] = "standard",
        every: int = 50,
        probe_params: dict[str, dict[str, Any]] | None = None,
        total_steps: int | None = None,
        store: RunStore | None = None,
        run_id: str | None = None,
        config: dict[str, Any] | None = None,
        name: str = "",
        task: Any = None,
        seed: int = 0,
        flush_every: int = 500,
        on_probe_error: str = "record",
        flush_seconds: float = 5.0,
        sinks: Sequence[Sink] = (),
        tensorboard: str | Path | None = None,
    ):
        if on_probe_error not in ("record", "raise"):
            raise ConfigError(f"The 'on_probe_error' parameter of Monitor must be one of "
                              f"'record', 'raise'; got {on_probe_error!r}.")
        self.on_probe_error = on_probe_error
        self.dist = current()
        model = unwrap(model)  # probes' passes must not trigger DDP's gradient all-reduce
        self.model, self.optimizer, self.task = model, optimizer, task
        if self.dist is not None and not self.dist.is_main:  # rank 0 alone writes
            if store is not None or sinks or tensorboard is not None:
                LOG.debug("Monitor on rank %d: the store and sinks are rank 0's",
                          self.dist.rank)
            store, run_id, sinks, tensorboard = None, None, (), None
        self.loss_fn = loss_function(loss_fn)
        self.skipped: dict[str, str] = {}  # probe name -> first reason it measured nothing
        self.notes: dict[str, str] = {}  # probe name -> first reason it measured less
        self.probes: list[Probe] = (build_probes(probes, every, **(probe_params or {}))
                                    if isinstance(probes, str) else list(probes))
        stray = sorted(set(probe_params or {}) - {p.name for p in self.probes})
        if stray:  # parameters nothing would read
            raise ConfigError(f"probe_params for {', '.join(map(repr, stray))}, which "
                              f"{'is' if len(stray) == 1 else 'are'} not a probe of this monitor")
        self.total_steps = total_steps
        self.store = store
        if store is not None and run_id is None:
            run_id = store.create_run(config or {"probes": [repr(p) for p in self.probes]},
                                      name=name, seed=seed)
        self.run_id = run_id
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self.flush_every, self.flush_seconds = flush_every, flush_seconds
        self._next_flush = time.monotonic() + flush_seconds
        self.step_index = 0
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.init_params: dict[str, torch.Tensor] = {}
        self._prev: dict[str, torch.Tensor] | None = None
        self._buffer: list[tuple[int, str, float]] = []
        self._set_up = False
        self._started = time.perf_counter()
        self._prev_probes = [p for p in self.probes if p.needs_prev_params]
        self._needs_prev = bool(self._prev_probes)
        self._watch = TrainableParams(model)  # the trainable parameters, walked on change
        self._trainable: list[tuple[str, nn.Parameter]] = []  # of the last _params() call
        self._run_cache: dict[str, Any] = {}  # the contexts' run_cache (see ProbeContext)
        # snapshot buffers (_buffer_for): (buffer, the params dict it was checked against,
        # (buffers, parameters)); two alternate when the fused norm pass writes the snapshot
        self._slots: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor],
                                tuple[list[torch.Tensor], list[torch.Tensor]]] | None] = [
            None, None]
        self._slot = 0
        self._fits_memo: tuple[dict[str, torch.Tensor], bool] | None = None
        self._quiet: range = range(0)  # steps that record the loss and lr only (_schedule)
        self._quiet_key: tuple[int, int] = (-1, 0)  # _cadence_key() when _quiet was derived
        # what the cadences decide at each residue of the step (see _cadence)
        self._cadences: tuple[int, int, dict[int, _Cadence]] | None = None
        self._finished = False
        self._attached: list[tuple[Probe, Handle]] = []
        self.sinks: list[Sink] = list(sinks)
        if tensorboard is not None:
            from trainlab.integrations.tensorboard import TensorBoardSink

            self.sinks.append(TensorBoardSink(tensorboard))
        try:
            for probe in self.probes:
                handle = probe.attach(model)
                if handle is not None:
                    self._attached.append((probe, handle))
        except BaseException:
            self._detach()
            raise
        self._dp_warned = False
        # steps ahead of its due steps that a probe needs (a snapshot, its hooks armed)
        early = {id(p) for p in self._prev_probes}
        early.update(id(p) for p, _ in self._attached)
        self._leads = [(p, int(id(p) in early)) for p in self.probes]
        self._lead = int(bool(early))
        self._arm(self.step_index)

    def _arm(self, step: int) -> bool:
        """Tell attached probes whether to record the coming forward/backward pass; whether
        any is to record."""
        armed = False
        for probe, _ in self._attached:
            due = self._due(probe, step)
            probe.arm(due)
            armed = armed or due
        return armed

    def _detach(self) -> None:
        for _, handle in self._attached:
            handle.remove()
        self._attached = []

    def _buffer_for(self, params: dict[str, torch.Tensor], double: bool
                    ) -> tuple[dict[str, torch.Tensor], tuple[list[torch.Tensor],
                                                              list[torch.Tensor]]]:
        """The buffer the next snapshot of ``params`` goes into, and its ``(buffers,
        parameters)`` lists; kept from one snapshot to the next, its layout checked against
        ``params`` only when ``params`` is not the dict of views it was last checked against
        (:meth:`_params` hands out the same dict while the parameters stay the same).
        ``double``: never the buffer that holds ``self._prev`` (two buffers alternate), so
        that the fused norm pass may write the new snapshot while the step's probes still
        read the previous one; else one buffer, overwritten after the probes."""
        if double and self._slots[self._slot] is not None \
                and self._slots[self._slot][0] is self._prev:
            self._slot ^= 1
        slot = self._slots[self._slot]
        if slot is not None and slot[1] is params:
            return slot[0], slot[2]
        buf = None if slot is None else slot[0]
        if buf is None or buf.keys() != params.keys() or any(
                b.shape != p.shape or b.dtype != p.dtype or b.device != p.device
                or b.stride() != p.stride() for b, p in zip(buf.values(), params.values())):
            buf = {n: torch.empty_like(p) for n, p in params.items()}
        pairs = (list(buf.values()), list(params.values()))
        self._slots[self._slot] = (buf, params, pairs)
        return buf, pairs

    def _fused_fits(self, params: dict[str, torch.Tensor]) -> bool:
        """Whether the fused norm pass takes ``params`` (:func:`trainlab.probes.fused.fits`;
        kept while :meth:`_params` hands out the same dict of views): the snapshot's second
        buffer is allocated only then."""
        kept = self._fits_memo
        if kept is None or kept[0] is not params:
            kept = self._fits_memo = (params, fused.fits(list(params.values())))
        return kept[1]

    def _snapshot(self, params: dict[str, torch.Tensor], offered: tuple[
            dict[str, torch.Tensor], tuple[list[torch.Tensor], list[torch.Tensor]]] | None = None
                  ) -> dict[str, torch.Tensor]:
        """``params`` copied into the kept buffer (:meth:`_buffer_for`; one
        ``_foreach_copy_``), unless the step's fused norm pass wrote that copy already
        (:data:`~trainlab.probes.norms.SNAPSHOT_OFFER`) and no parameter has changed in place
        since (their ``_version`` counters). ``offered``: what :meth:`_buffer_for` returned
        when the buffer was offered at this step (the same buffer: nothing it reads has
        changed since)."""
        offer = self._run_cache.pop(SNAPSHOT_OFFER, None)
        written = self._run_cache.pop(SNAPSHOT_WRITTEN, None)
        buf, pairs = (offered if offered is not None
                      else self._buffer_for(params, offer is not None))
        if (written is None or written[0] != self.step_index or written[1] is not pairs[0]
                or written[2] != [t._version for t in pairs[1]]):
            torch._foreach_copy_(*pairs)
        return buf

    def _due(self, probe: Probe, step: int) -> bool:
        return probe.due(step) or step == self.total_steps

    def _cadence_key(self) -> tuple[int, int]:
        """What the kept decisions of the cadences (:meth:`_cadence`, :meth:`_schedule`)
        stay valid for: :attr:`Probe.cadence_changes` (an ``every`` set anew) and how many
        probes have a ``due`` of their own set on the instance (one set or deleted during a
        run is followed from the next step: while any probe has one, nothing is kept)."""
        return Probe.cadence_changes, sum(["due" in vars(p) for p in self.probes])

    def _cadence(self, step: int, key: tuple[int, int]) -> _Cadence | None:
        """What the probes' cadences decide at ``step`` (:class:`_Cadence`: the probes due,
        whether the parameters are kept for the next step),
        worked out once per residue of ``step`` modulo the cadences' least common multiple
        and kept while ``key`` (:meth:`_cadence_key` at this step) stays the same;
        the two last steps (``total_steps - 1`` and ``total_steps``) are worked out each
        time. None when a probe decides for itself (its own ``due``, asked at every step
        then) or the cycle is longer than :data:`CYCLE_MAX` steps."""
        kept = self._cadences
        if kept is None or kept[0] != key:
            period = 1
            for probe in self.probes:
                if type(probe).due is not Probe.due or "due" in vars(probe):
                    period = 0
                    break
                period = math.lcm(period, probe.every)
            kept = self._cadences = (key, period if period <= CYCLE_MAX else 0, {})
        period = kept[1]
        if not period:
            return None
        last = self._total_steps
        if last is not None and last - 1 <= step <= last:
            return self._cadence_at(step)
        cadence = kept[2].get(step % period)
        if cadence is None:  # away from the last steps: the same at every step of the residue
            cadence = kept[2][step % period] = self._cadence_at(step)
        return cadence

    def _cadence_at(self, step: int) -> _Cadence:
        due = self._due
        return _Cadence([p for p in self.probes if due(p, step)],
                        self._needs_prev and any([due(p, step + 1) for p in self._prev_probes]))

    def _due_now(self, k: int) -> tuple[list[Probe], bool]:
        """The probes due at step ``k``, and whether a probe that needs the previous
        parameters is due at ``k + 1`` (the parameters are then kept at ``k``)."""
        last = self._total_steps
        due = list(self.probes) if k == last else [p for p in self.probes if p.due(k)]
        if not self._needs_prev:
            return due, False
        return due, k + 1 == last or any([p.due(k + 1) for p in self._prev_probes])

    @property
    def total_steps(self) -> int | None:
        """The final step, always measured (None: not known); a new value takes effect at
        the next step."""
        return self._total_steps

    @total_steps.setter
    def total_steps(self, value: int | None) -> None:
        self._total_steps = value
        self._quiet = range(0)

    def _schedule(self, start: int) -> range:
        """The steps from ``start`` on before the first one at which anything but the loss
        and the lr is to be done: a probe due, the parameter snapshot for a probe due at
        the next step, an attached probe to arm (:meth:`step` records only the loss and the
        lr there, and neither pauses nor arms the attached probes: they are disarmed and
        stay so). Derived from the probes' cadences (``step % every == 0``, and
        ``total_steps``): kept while :meth:`_cadence_key` stays the same and ``total_steps``
        is not set anew; empty when a probe decides for itself (its own ``due``), or before
        the initial parameters are kept."""
        if not self.init_params:
            return range(0)
        end = start + 2**62
        for probe, lead in self._leads:
            if type(probe).due is not Probe.due or "due" in vars(probe):
                return range(0)
            every = probe.every
            end = min(end, -(-start // every) * every - lead)  # its next due step, less lead
        last = self._total_steps
        if last is not None and last >= start:
            end = min(end, last - self._lead)
        return range(start, max(start, end))

    def _params(self) -> dict[str, torch.Tensor]:
        """Detached views of the trainable parameters, kept while the parameters (objects,
        storage, ``requires_grad``) stay the same: a view follows in-place updates, and
        detaching anew every step costs a tensor operation per parameter. The module tree
        is walked only when it changed (:class:`~trainlab.train.trainable.TrainableParams`)."""
        self._trainable, views = self._watch.current()
        return views

    def step(self, loss: torch.Tensor | float, batch: tuple[Any, Any] | None = None,
             lr: float | None = None, *, loss_over_ranks: str = "mean") -> bool:
        """Record step ``self.step_index`` and advance the counter.

        Returns False when the loss is NaN/Inf (the caller should stop: the run diverged);
        the non-finite loss is recorded and no probe runs at that step.

        ``loss_over_ranks`` (data-parallel training): how the ranks' ``loss`` make the
        global batch's: ``"mean"`` (each is its shard's mean loss: their example-weighted
        mean) or ``"sum"`` (each is already its shard's share of the global mean, as
        ``transformers.Trainer`` computes it with ``average_tokens_across_devices``).
        """
        k = self.step_index
        # at a quiet step (no probe due, no snapshot; see _schedule) the attached probes are
        # disarmed, and only the loss and the lr are recorded
        key = self._cadence_key()
        quiet = k in self._quiet and self._quiet_key == key
        if quiet and self.dist is None and isinstance(loss, torch.Tensor):
            return self._quiet_step(k, float(loss.item()), lr)  # (item: no detached view)
        if not quiet:
            for probe, _ in self._attached:  # keep what the training pass recorded
                probe.pause()  # hooks stay until _arm below: kept when step k + 1 is due too
        if lr is None and self.optimizer is not None:
            lr = self.optimizer.param_groups[0]["lr"]
        loss_t = loss.detach() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
        examples = None
        if self.dist is not None:
            if loss_over_ranks not in ("mean", "sum"):
                raise ConfigError(f"The 'loss_over_ranks' parameter of Monitor.step must be "
                                  f"one of 'mean', 'sum'; got {loss_over_ranks!r}.")
            loss_t, examples = self._global_loss(loss_t, batch, loss_over_ranks == "sum")
        loss_value = float(loss_t.item())  # the one host sync of a step without probes
        finite = math.isfinite(loss_value)
        values: Packed = {"loss": loss_value}
        if lr is not None:
            values["lr"] = float(lr)
        if quiet:  # under data-parallel training, or a loss given as a number
            return self._quiet_step(k, loss_value, lr)
        if not finite:
            due, snapshot = [], False
        else:
            cadence = self._cadence(k, key)
            due, snapshot = (self._due_now(k) if cadence is None
                             else (cadence.due, cadence.snapshot))
        # the parameters (detached views, kept between steps) go to the probes through the
        # context's cache
        params = self._params() if due or snapshot or not self.init_params else {}
        if not self.init_params:
            self.init_params = {n: p.clone() for n, p in params.items()}
        offered = None  # the snapshot's buffer when offered to the fused norm pass
        if due:
            if snapshot and fused.available() and self._fused_fits(params):
                # the fused norm pass may write the snapshot (into the second buffer)
                offered = self._buffer_for(params, True)
                self._run_cache[SNAPSHOT_OFFER] = (k, params, offered[1][0])
            ctx = _context({"step": k, "model": self.model, "loss_fn": self.loss_fn,
                            "batch": batch, "loss": loss_t, "optimizer": self.optimizer,
                            "lr": lr, "init_params": self.init_params,
                            "prev_params": self._prev, "task": self.task,
                            "generator": self.generator,
                            "cache": {"params": params, "trainable": self._trainable,
                                      "tree": self._watch.tree},
                            "run_cache": self._run_cache, "notes": {}, "warn": False,
                            "dist": None})
            contexts = self._contexts(ctx, due, examples) if self.dist is not None else None
            autocast = _autocast_devices()
            if autocast:  # the probes' own passes: not under the user's autocast
                with _autocast_off(autocast):
                    self._measure_all(due, ctx, contexts, values)
            else:
                self._measure_all(due, ctx, contexts, values)
            self._set_up = True
        self._prev = self._snapshot(params, offered) if snapshot else None
        self._record(k, values)
        self.step_index = k + 1
        armed = self._arm(k + 1)
        self._quiet = range(0) if snapshot or armed else self._schedule(k + 1)
        self._quiet_key = key  # (an every set while measuring: a new key at the next step)
        self._flush_if_due(k)
        return finite

    def _quiet_step(self, k: int, loss_value: float, lr: float | None) -> bool:
        """The rest of :meth:`step` at a quiet step ``k``: the loss and the lr recorded (the
        history's lists and the store's buffer appended to directly, in :meth:`_write`'s
        order, when there is no sink)."""
        if lr is None and self.optimizer is not None:
            lr = self.optimizer.param_groups[0]["lr"]
        self._prev = None
        self.step_index = k + 1
        history = self.history
        if self.sinks or "loss" not in history or (lr is not None and "lr" not in history):
            self._write(k, [("loss", loss_value)] if lr is None
                        else [("loss", loss_value), ("lr", float(lr))])
        else:
            history["loss"].append((k, loss_value))
            if lr is not None:
                lr = float(lr)
                history["lr"].append((k, lr))
            if self.store is not None:
                self._buffer.append((k, "loss", loss_value))
                if lr is not None:
                    self._buffer.append((k, "lr", lr))
        if self._buffer:
            self._flush_if_due(k)
        return math.isfinite(loss_value)

    def _flush_if_due(self, k: int) -> None:
        """After step ``k``: flush every ``flush_every`` steps and ``flush_seconds``."""
        if len(self._buffer) and ((k + 1) % self.flush_every == 0
                                  or time.monotonic() >= self._next_flush):
            self.flush()

    # ---- data-parallel training ------------------------------------------------------
    def _global_loss(self, loss: torch.Tensor, batch: Any, shares: bool
                     ) -> tuple[torch.Tensor, int]:
        """The global batch's loss (the example-weighted mean of the ranks' losses, or their
        sum when they are ``shares`` of it already) and its number of examples; warns once
        when the shards differ in size (DDP's averaged gradient is then not the global
        batch's) or BatchNorm normalizes per shard."""
        n = _examples(batch)
        mine = torch.tensor([[float(loss), float(n)]], dtype=torch.float64,
                            device=loss.device)
        table = self.dist.all_gather_cat(mine)  # (world, 2): loss and examples per rank
        total = float(table[:, 1].sum())
        value = table[:, 0].sum() if shares else (table[:, 0] * table[:, 1]).sum() / total
        sizes = table[:, 1].tolist()
        if len(set(sizes)) > 1:  # noted (and logged) once per run, checked at every step
            self._remember(self.notes, "data-parallel/shards", self.step_index,
                           f"shards of unequal sizes {[int(s) for s in sizes]}: DDP's "
                           f"gradient is the mean of the ranks' mean gradients, not the "
                           f"global batch's; gradient-based numbers differ from one process")
        if not self._dp_warned:
            self._dp_warned = True
            if any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
                   and not isinstance(m, nn.SyncBatchNorm) for m in self.model.modules()):
                self._remember(self.notes, "data-parallel/batchnorm", self.step_index,
                               "BatchNorm in training mode normalizes with each rank's "
                               "shard: the numbers differ from one process on the global "
                               "batch (use torch.nn.SyncBatchNorm)")
        return value.to(loss.dtype), int(total)

    def _contexts(self, ctx: ProbeContext, due: list[Probe], examples: int | None
                  ) -> dict[str, ProbeContext]:
        """Under data-parallel training, the context of each ``ddp`` policy: ``ctx`` holds
        this rank's shard; "reduced" probes get it with ``dist`` set; "global-batch" and
        "replicated" probes get the global batch, gathered only when a "global-batch" probe
        is due (the contexts share one per-step cache: its values are global either way)."""
        if self.dist is None:
            return {}
        ctx.cache["examples"] = examples
        group = agreement.ProbeGroup(self.dist.rank, self.dist.world_size, self.dist.group)
        out = {"reduced": dataclasses.replace(ctx, dist=group)}  # same cache and notes
        if any(_policy(p) == "global-batch" for p in due):
            batch = self.dist.gather_batch(ctx.batch)
            out["global-batch"] = out["replicated"] = dataclasses.replace(ctx, batch=batch)
        return out

    def _measure_all(self, due: list[Probe], ctx: ProbeContext,
                     contexts: dict[str, ProbeContext] | None, values: Packed) -> None:
        """Measure the ``due`` probes in order into ``values``, each on its context
        (:meth:`_contexts`, under data-parallel training)."""
        measure = self._measure
        if contexts:
            for probe in due:
                values.update(measure(probe, contexts.get(_policy(probe), ctx)))
        else:
            for probe in due:
                values.update(measure(probe, ctx))

    def _measure(self, probe: Probe, ctx: ProbeContext) -> Packed:
        """One probe's measurement; what it could not measure, and why, goes to
        :attr:`skipped` / :attr:`notes` (one warning per probe and run).

        A probe that raises leaves no trace: its state, the generator and the cache entries
        it added are rolled back. Under data-parallel training every rank agrees on whether
        the probe measured (:mod:`trainlab.train.probe_agreement`): a probe that raises on
        some ranks only is skipped on every rank, with the failing rank's reason, and no
        rank waits in a collective that the failing rank will not enter."""
        if ctx.dist is None and self.dist is not None and _policy(probe) == "unsupported":
            self._remember(self.skipped, probe.name, ctx.step, "not supported under "
                           "data-parallel training (its registry entry says ddp='unsupported')")
            return {}
        saved = _Savepoint(probe, ctx)
        state, seen, error = agreement.MEASURED, None, None
        try:
            if not self._set_up:
                probe.setup(ctx)
            # per-tensor families come as vectors, read once each by _record
            out = probe.measure_packed(ctx) if packs(probe) else probe.measure(ctx)
        except agreement.ProbeAborted as exc:  # another rank ended the probe first
            out, state, seen = {}, None, exc.seen
        except PROBE_ERRORS as exc:
            if self.on_probe_error == "raise" and self.dist is None:
                raise
            out, state, error = {}, agreement.FAILED, exc
        except BaseException as exc:
            if self.dist is None:
                raise
            out, state, error = {}, agreement.FATAL, exc
        why = _describe(error) if error is not None else ""
        if self.dist is not None:
            verdict = agreement.conclude(self.dist, state, seen, why)
            if verdict.fatal or (not verdict.measured and self.on_probe_error == "raise"):
                if error is not None:
                    raise error
                raise TrainlabError(f"probe {probe.name!r} at step {ctx.step}: "
                                    f"{verdict.reason}")
            why = verdict.reason
        if why:
            saved.restore()
            ctx.notes.pop(probe.name, None)
            self._remember(self.skipped, probe.name, ctx.step, why)
            return {}
        if ctx.notes:  # (empty at most steps)
            reason = ctx.notes.pop(probe.name, None)
            if reason is not None:
                self._remember(self.notes if out else self.skipped, probe.name, ctx.step,
                               reason)
        return out

    @staticmethod
    def _remember(where: dict[str, str], name: str, step: int, reason: str) -> None:
        """Keep the first reason of each probe and log it, once per run."""
        if name in where:
            return
        where[name] = f"{reason} (first at step {step})"
        LOG.warning("probe %r at step %d: %s (logged once per run; kept in the run record)",
                    name, step, reason)

    def _record(self, step: int, values: Packed) -> None:
        """Record the named values of a step as floats, tables
        (:class:`~trainlab.probes._probe.Table`) opened: on the CPU by one ``tolist()``
        each (the exact values, as ``item()`` reads them), elsewhere as 0-d tensors, read
        with the step's other tensors by one copy (one device sync per step)."""
        items: list[tuple[str, Any]] = []
        tensors: list[int] = []  # where items still holds a tensor
        read: dict[int, list] = {}  # the vectors read, by id (tables may share one)
        append = items.append
        for name, value in values.items():
            if type(value) is float:  # the common scalar (the loss, the lr)
                append((name, value))
                continue
            if isinstance(value, Table):
                vector = value.values
                if vector.is_cpu:  # read once (a vector, or all rows of a 2-D table)
                    entries = read.get(id(vector))
                    if entries is None:  # exact Python floats (ints for integer vectors)
                        entries = read[id(vector)] = vector.tolist()
                        if not vector.is_floating_point():
                            entries = read[id(vector)] = _floats(entries)
                    if value.row is not None:
                        entries = entries[value.row]
                    items += [(n, x) for n, x in zip(value.names, entries) if n is not None]
                    continue
                entries: Any = zip(value.names, value.vector().unbind())
            else:
                entries = ((name, value),)
            for n, x in entries:
                if n is None:
                    continue
                if isinstance(x, torch.Tensor):
                    tensors.append(len(items))
                    append((n, x))
                else:
                    append((n, float(x)))
        if tensors:
            for i, x in zip(tensors, _to_floats([items[i][1] for i in tensors])):
                items[i] = (items[i][0], x)
        self._write(step, items)

    def _write(self, step: int, items: list[tuple[str, float]]) -> None:
        """Append the named floats of ``step`` to the history, the store's buffer and the
        sinks, in order."""
        history = self.history
        for name, x in items:
            try:
                history[name].append((step, x))
            except KeyError:
                history[name] = [(step, x)]
        if self.store is not None:  # the store's buffer, in the same order
            self._buffer += [(step, name, x) for name, x in items]
        if self.sinks:
            recorded = {name: history[name][-1][1] for name, _ in items}
            for sink in self.sinks:
                sink.write(step, recorded)

    def flush(self) -> None:
        """Write buffered rows to the store (one transaction)."""
        if self.store is not None and self._buffer:
            self.store.log_metrics(self.run_id, self._buffer)
        self._buffer = []
        self._next_flush = time.monotonic() + self.flush_seconds

    def detach(self) -> None:
        """Remove the probes' hooks from the model without writing anything."""
        self._detach()

    def last(self, name: str, default: float = math.nan) -> float:
        values = self.history.get(name)
        return values[-1][1] if values else default

    def summary(self, status: str = "completed") -> dict[str, Any]:
        """Headline numbers: final losses and metrics, best test accuracy, timing."""
        losses = [v for _, v in self.history.get("loss", [])]
        finite = [v for v in losses if math.isfinite(v)]
        out: dict[str, Any] = {"status": status, "steps": max(self.step_index - 1, 0),
                               "final_loss": finite[-1] if finite else math.nan,
                               "seconds": round(time.perf_counter() - self._started, 3)}
        for name in sorted(self.history):
            if name.startswith(("train/", "test/")):
                out[f"final_{name.replace('/', '_')}"] = self.last(name)
        if "test/accuracy" in self.history:
            out["best_test_accuracy"] = max(v for _, v in self.history["test/accuracy"])
        if status == "diverged":
            out["diverged_at"] = self.step_index - 1
        if self.skipped:
            out["skipped_probes"] = dict(self.skipped)
        if self.notes:
            out["probe_notes"] = dict(self.notes)
        if self.dist is not None:
            out["world_size"] = self.dist.world_size
        return out

    def finish(self, status: str = "completed", extra: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """Detach the probes' hooks from the model, flush, mark the run with ``status`` and
        return the summary."""
        self._detach()
        self._finished = True
        self.flush()
        for sink in self.sinks:
            sink.close()
        summary = {**self.summary(status), **(extra or {})}
        if self.store is not None:
            self.store.set_status(self.run_id, status, summary)
        return summary

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Finish (``failed`` after an exception) unless :meth:`finish` was called."""
        if not self._finished:
            self.finish("failed" if exc_type is not None else "completed")
        self._detach()

    # ---- checkpointing ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        prev = None if self._prev is None else {n: t.clone() for n, t in self._prev.items()}
        return {"step_index": self.step_index, "init_params": self.init_params,
                "prev": prev, "generator": self.generator.get_state(),
                "probes": [p.state_dict() for p in self.probes], "set_up": self._set_up,
                "history": self.history, "skipped": dict(self.skipped),
                "notes": dict(self.notes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_index = state["step_index"]
        self.init_params = state["init_params"]
        self._prev = state["prev"]
        self._run_cache = {}
        self.generator.set_state(state["generator"])
        for probe, s in zip(self.probes, state["probes"]):
            probe.load_state_dict(s)
        self._set_up = state["set_up"]
        self.skipped = dict(state.get("skipped", {}))
        self.notes = dict(state.get("notes", {}))
        self.history = {k: [e for e in v if e[0] < self.step_index]
                        for k, v in state["history"].items()}
        self._buffer = []
        self._quiet = range(0)
        self._arm(self.step_index)


CYCLE_MAX = 4096
"""The longest cycle of cadences (least common multiple of the probes' ``every``) whose
decisions a monitor keeps step by step (:meth:`Monitor._cadence`)."""


class _Cadence(NamedTuple):
    """What the cadences decide at a step: the probes due, and whether the parameters are
    kept for the next step (a probe that needs them is due then)."""

    due: list[Probe]
    snapshot: bool


class _Savepoint:
    """What a probe may change while measuring: its state, the generator's state and the
    entries it adds to the step's and the run's caches; :meth:`restore` rolls them back."""

    __slots__ = ("probe", "ctx", "state", "rng", "keys")

    def __init__(self, probe: Probe, ctx: ProbeContext):
        self.probe, self.ctx = probe, ctx
        if type(probe).state_dict is Probe.state_dict and "state_dict" not in vars(probe):
            self.state = {}  # Probe.state_dict: no state (its copy is {})
        else:
            state = probe.state_dict()
            self.state = copy.deepcopy(state) if state else {}  # most probes keep none
        self.rng = (ctx.generator.get_state()
                    if probe.uses_generator and ctx.generator is not None else None)
        self.keys = tuple(ctx.cache), tuple(ctx.run_cache)

    def restore(self) -> None:
        self.probe.load_state_dict(self.state)
        if self.rng is not None:
            self.ctx.generator.set_state(self.rng)
        for cache, keys in zip((self.ctx.cache, self.ctx.run_cache), self.keys):
            for key in set(cache).difference(keys):
                del cache[key]


AUTOCAST_DEVICES = ("cpu", "cuda", "mps", "xpu")


def full_precision() -> contextlib.AbstractContextManager[None]:
    """Autocast turned off, on every device type where the caller turned it on (a probe
    called inside the user's ``torch.autocast`` block computes in the model's dtype, not in
    bfloat16/float16), and back on after; a ``nullcontext`` where autocast is off
    everywhere (the common case: it costs a tenth of an ``ExitStack``). :meth:`Monitor.step`
    asks :func:`_autocast_devices` itself and enters no context when the list is empty."""
    devices = _autocast_devices()
    return _autocast_off(devices) if devices else contextlib.nullcontext()


def _autocast_devices() -> list[str]:
    """The device types of :data:`AUTOCAST_DEVICES` where autocast is on."""
    return [device for device in AUTOCAST_DEVICES if torch.is_autocast_enabled(device)]


@contextlib.contextmanager
def _autocast_off(devices: list[str]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for device in devices:
            stack.enter_context(torch.autocast(device, enabled=False))
        yield


def _context(fields: dict[str, Any]) -> ProbeContext:
    """The :class:`~trainlab.probes.ProbeContext` whose attributes are ``fields`` (every
    field of the dataclass, by name), made without its generated ``__init__`` (which costs
    twice as much with keywords at every due step); ``tests/train/test_monitor_steady.py``
    checks that it equals the constructor's."""
    ctx = _new(ProbeContext)
    ctx.__dict__ = fields
    return ctx


_new = object.__new__


def _examples(batch: Any) -> int:
    """The examples of a batch as :meth:`Monitor.step` receives it: ``(inputs, targets)``,
    a dict of model inputs (the leading dimension of its first tensor), or None (1)."""
    if batch is None:
        return 1
    if isinstance(batch, dict):
        first = next((v for v in batch.values() if isinstance(v, torch.Tensor)), None)
        return 1 if first is None or first.dim() == 0 else int(first.shape[0])
    return batch_size(batch[0])


def _describe(exc: BaseException) -> str:
    """``"Type: first line of the message"``."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}"


def _policy(probe: Probe) -> str:
    """The probe's ``ddp`` policy (:class:`~trainlab.probes._probe.ProbeInfo`; probes
    outside the registry: ``"global-batch"``)."""
    from trainlab.probes import PROBES

    name = probe.name
    if name in PROBES and isinstance(probe, PROBES.get(name)):
        return PROBES.entry(name).info.ddp
    return "global-batch"


def _floats(entries: list) -> list:
    """``tensor.tolist()``'s numbers (nested lists for a 2-D tensor) as Python floats."""
    return [_floats(x) if isinstance(x, list) else float(x) for x in entries]


def _to_floats(tensors: list[torch.Tensor]) -> list[float]:
    """Python floats of scalar tensors: on the CPU one read each (cheaper than stacking
    them), else by one stacked copy to the host (one device sync)."""
    if all(t.is_cpu for t in tensors):
        return [float(t.item()) for t in tensors]  # exact, as tolist() below
    with torch.no_grad():
        try:  # the common case: scalars on one device
            stacked = torch.stack(tensors)
        except RuntimeError:  # other shapes (one element each) or several devices
            stacked = torch.stack([t.to("cpu", torch.float64).reshape(()) for t in tensors])
        if stacked.shape != (len(tensors),):  # e.g. shape-(1,) values; more raises
            stacked = torch.stack([t.reshape(()) for t in tensors])
        # tolist() gives the exact values of any float dtype as Python floats
        return (stacked if stacked.device.type == "cpu" else stacked.cpu()).tolist()
