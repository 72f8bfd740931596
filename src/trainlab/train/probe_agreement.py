"""Data-parallel probes that fail on some ranks only: every rank agrees on whether a probe
measured, and no rank waits in a collective that another rank will never reach.

The hazard: a probe that reduces across the ranks itself (``ddp="reduced"``: averaged
Hessian-vector products, gathered per-sample statistics) makes a sequence of collectives. When
it raises on rank 1 before a collective that rank 0 then enters, rank 0 waits forever (or
until the process group's timeout). The failure can come before the first collective or
between two of them (the hard case: both ranks have already met in the first).

The protocol: a probe's measurement is a round of *votes*. A vote is one all-reduce (MAX) of
four flags, one per state a rank can be in:

- ``COLLECTIVE``: about to enter a collective of the probe (every collective of ``ctx.dist``,
  a :class:`ProbeGroup`, votes first, and runs only when every rank voted ``COLLECTIVE``;
  otherwise :class:`ProbeAborted` is raised inside the probe, before the collective);
- ``MEASURED``: the probe returned;
- ``FAILED``: the probe raised one of the errors that skip a probe (``PROBE_ERRORS``);
- ``FATAL``: the probe raised anything else (e.g. ``KeyboardInterrupt``): the run stops on
  every rank.

A rank whose probe returned or raised votes once more (:func:`conclude`); a rank aborted at a
collective has already voted. Invariant: until a vote shows a state other than
``COLLECTIVE``, every rank has made the same votes (probes are deterministic given the same
inputs, which the ranks share); the first vote in which some rank ends (returns or raises)
is one vote on every rank (the ending rank's last, the others' guard or last), so every rank
sees the same flags there and none votes again. The round's verdict is therefore the same on
every rank: measured only when every rank's probe returned without any rank entering a
collective the others did not.

When the round did not measure, every rank knows it, so one more collective gathers each
rank's reason, and every rank records the same one (the failing rank and its error). The
caller (the Monitor) then rolls the probe back on every rank (its state, the generator,
the cache entries it added), so the ranks stay in lockstep for the probes that follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trainlab.train.distributed import Distributed

COLLECTIVE, MEASURED, FAILED, FATAL = range(4)
STATES = ("collective", "measured", "failed", "fatal")


def vote(group: Distributed, state: int) -> frozenset[int]:
    """Vote ``state`` (one all-reduce); the states some rank voted."""
    flags = Distributed.any_of(group, [i == state for i in range(len(STATES))])
    return frozenset(i for i, f in enumerate(flags) if f)


class ProbeAborted(BaseException):  # noqa: N818  (control flow, like GeneratorExit)
    """Raised inside a probe, before a collective that some other rank will not enter
    (it returned or raised). A ``BaseException``: a probe's own fallbacks (``except
    RuntimeError``) must not catch it and go on to other collectives. ``seen``: the states
    of that vote."""

    def __init__(self, seen: frozenset[int]):
        super().__init__(f"another rank ended the probe ({sorted(STATES[s] for s in seen)})")
        self.seen = seen


@dataclass(frozen=True)
class ProbeGroup(Distributed):
    """The process group as a probe sees it (``ctx.dist``): each collective is entered only
    when every rank is about to enter it (one vote before it), else :class:`ProbeAborted`."""

    def _enter(self) -> None:
        seen = vote(self, COLLECTIVE)
        if seen != {COLLECTIVE}:
            raise ProbeAborted(seen)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        self._enter()
        return super().all_reduce_sum(tensor)

    def all_gather_cat(self, tensor: torch.Tensor) -> torch.Tensor:
        self._enter()
        return super().all_gather_cat(tensor)

    def objects(self, obj: Any) -> list[Any]:
        self._enter()
        return super().objects(obj)

    def any_of(self, flags: list[bool]) -> list[bool]:
        self._enter()
        return super().any_of(flags)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one probe's round, the same on every rank: ``measured`` (every rank's
    probe returned), else ``reason`` (which rank failed and why) and ``fatal`` (some rank
    raised an error that stops the run)."""

    measured: bool
    reason: str = ""
    fatal: bool = False


def conclude(group: Distributed, state: int | None, seen: frozenset[int] | None,
             reason: str) -> Verdict:
    """This rank's last vote of a probe's round and the round's verdict.

    Args:
        group: the process group.
        state: ``MEASURED``, ``FAILED`` or ``FATAL``; None when the probe was aborted at a
            collective (its vote is then ``seen``, made already).
        seen: the states of the aborting vote (with ``state=None``).
        reason: this rank's error, ``"Type: message"`` (empty when it measured or was
            aborted).
    """
    if state is not None:
        seen = vote(group, state)
    if seen == {MEASURED}:
        return Verdict(True)
    own = STATES[COLLECTIVE if state is None else state]
    ranks = Distributed.objects(group, (own, reason))  # every rank knows: one more gather
    failed = [(r, s, why) for r, (s, why) in enumerate(ranks) if s in ("failed", "fatal")]
    where = f"{group.world_size} data-parallel ranks"
    if failed:
        r, _, why = failed[0]
        others = [str(f[0]) for f in failed[1:]]
        text = (f"{why} (raised on rank {r} of {where}"
                + (f", also on rank {', '.join(others)}" if others else "")
                + "; skipped on every rank)")
    else:
        done = [r for r, (s, _) in enumerate(ranks) if s == "measured"]
        waiting = [r for r, (s, _) in enumerate(ranks) if s == "collective"]
        text = (f"the ranks disagreed on the probe's collectives: rank(s) {done} returned "
                f"while rank(s) {waiting} entered another collective (a probe must make the "
                f"same collectives on every rank); skipped on every rank")
    return Verdict(False, text, fatal=FATAL in seen)
