"""The phenomenon protocol: a paper's claim as an experiment that checks itself.

A :class:`Phenomenon` declares what it reproduces (``claim``, ``papers``, ``paper_figure``:
the figure or table of the paper the criterion is read from, ``scale_downs``: every axis along
which the experiment is smaller than the paper's) and implements :meth:`~Phenomenon.run`,
:meth:`~Phenomenon.check` and :meth:`~Phenomenon.plot`. ``run(quick=False)`` is the verdict
(the paper's setting scaled to at most 10 minutes on 2 cores); ``run(quick=True)`` is the
test setting (at most 20 s). Where the claim cannot show in 20 s, the phenomenon declares
``quick_reference``: the numbers its quick run measured when they were recorded, and the tests
compare a fresh quick run with them (:meth:`Phenomenon.guard`, a regression guard on the full
code path) instead of with the claim.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from trainlab.registry import EntryInfo, Registry


@dataclass(frozen=True)
class Check:
    """One comparison of a measured number with the paper's claim.

    ``expected`` says the criterion in words with its tolerance (e.g. ``"< 0.01 (1%)"``).
    Where ``measured`` summarises several seeds (a mean, a median, a ratio of medians),
    ``seeds`` says how many and ``spread`` is their seed-to-seed spread (the half-range
    unless the check's ``expected`` text says otherwise); one seed has ``spread = nan``.
    """

    name: str
    measured: float
    expected: str
    passed: bool
    spread: float = math.nan
    seeds: int = 1

    def __post_init__(self) -> None:  # numpy scalars in, plain Python values out (JSON)
        object.__setattr__(self, "measured", float(self.measured))
        object.__setattr__(self, "passed", bool(self.passed))
        object.__setattr__(self, "spread", float(self.spread))
        object.__setattr__(self, "seeds", int(self.seeds))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("measured", "spread"):  # JSON has no NaN: None stands for it
            d[k] = d[k] if math.isfinite(d[k]) else None
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Check:
        def num(v: Any) -> float:
            return math.nan if v is None else float(v)

        return cls(d["name"], num(d["measured"]), d["expected"], d["passed"],
                   num(d.get("spread")), int(d.get("seeds", 1)))


def seed_summary(values: Any) -> tuple[float, float, int]:
    """``(mean, half-range, n)`` of per-seed values, for a :class:`Check` over seeds."""
    v = np.asarray(values, dtype=float).ravel()
    spread = 0.5 * float(v.max() - v.min()) if v.size > 1 else math.nan
    return float(v.mean()), spread, int(v.size)


def seed_effect_check(name: str, values: Any, *, baseline: float = 0.0) -> Check:
    """The rule for a comparison over seeds (issue 12): PASS iff the mean of the per-seed
    ``values`` exceeds ``baseline`` by more than their half-range (with one seed, iff it
    exceeds ``baseline``). ``measured`` is the mean, ``spread`` the half-range."""
    mean, spread, n = seed_summary(values)
    margin = spread if n > 1 else 0.0
    rule = f"mean > {baseline:g} + seed half-range" if n > 1 else f"> {baseline:g} (1 seed)"
    return Check(name, mean, rule, mean - baseline > margin, spread, n)


def map_runs(fn: Callable[..., Any], jobs: Mapping[str, tuple[Any, ...]], *,
             processes: int) -> dict[str, Any]:
    """``{key: fn(*args)}`` for every ``key: args`` of ``jobs`` (in their order), the runs in
    ``processes`` worker processes of :class:`trainlab.train.grid.LocalExecutor` (1: one
    after another in this process).

    For a phenomenon whose runs are self-contained (each one draws everything from its own
    seeds): ``fn`` is a module-level function of plain arguments returning plain results.
    Each worker uses this process's ``torch.get_num_threads()`` threads, so the reductions
    split the same way and every number equals the serial one bit for bit.
    """
    import torch

    from trainlab.train.grid import LocalExecutor

    executor = LocalExecutor(processes, threads=torch.get_num_threads())
    calls = [(fn, args) for args in jobs.values()]
    return dict(zip(jobs, executor.map(_call, calls), strict=True))


def _call(call: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
    fn, args = call
    return fn(*args)


@dataclass
class Outcome:
    """The result of a phenomenon: PASS iff every check passed (and nothing raised).

    ``guard`` holds the regression-guard checks of a quick run of a phenomenon with a
    ``quick_reference`` (empty otherwise); ``error`` the exception text of a run that raised.
    """

    name: str
    checks: list[Check]
    numbers: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    quick: bool = False
    seed: int = 0
    guard: list[Check] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def guard_passed(self) -> bool:
        return not self.error and bool(self.guard) and all(c.passed for c in self.guard)

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "seed": self.seed,
                "passed": self.passed, "seconds": round(self.seconds, 3),
                "checks": [c.to_json() for c in self.checks],
                "guard": [c.to_json() for c in self.guard], "error": self.error}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Outcome:
        checks = [Check.from_json(c) for c in d.get("checks", [])]
        return cls(d["name"], checks, {c.name: c.measured for c in checks},
                   float(d.get("seconds", 0.0)), d.get("mode") == "quick", int(d.get("seed", 0)),
                   [Check.from_json(c) for c in d.get("guard", [])], d.get("error", ""))


class Phenomenon(ABC):
    """Subclasses set the declared attributes below and implement :meth:`run`,
    :meth:`check` and :meth:`plot`.

    ``run(quick=True)`` must finish in under 20 s on 2 CPU cores (used by the tests); the full
    setting in at most 10 minutes. The pass criterion in :meth:`check` is the paper's claim,
    quantified from ``paper_figure``, with its tolerance and the reason for it, written before
    the run.

    Attributes:
        name: the registry name.
        papers: papers.md rows.
        claim: the paper's claim in one sentence.
        paper_figure: where in the paper the claim and its numbers are (e.g. ``"Fig. 3"``).
        scale_downs: each way the experiment is smaller than the paper's (one phrase each).
        quick_reference: check name -> the value a quick run measured when it was recorded,
            for a phenomenon whose claim cannot show in 20 s (empty: the quick run is judged
            by the claim itself).
        quick_rtol: the relative tolerance of the guard (``quick_atol`` the absolute one).
    """

    name: str = ""
    papers: tuple[int, ...] = ()
    claim: str = ""
    paper_figure: str = ""
    scale_downs: tuple[str, ...] = ()
    quick_reference: Mapping[str, float] = {}
    quick_rtol: float = 0.05
    quick_atol: float = 1e-6

    @abstractmethod
    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        """Run the experiment and return its raw data (arrays, curves, numbers)."""

    @abstractmethod
    def check(self, data: dict[str, Any]) -> list[Check]:
        """Compare the data with the paper's claim."""

    def plot(self, data: dict[str, Any]) -> Any:
        """A matplotlib figure of the data (or None)."""
        return None

    def guard(self, numbers: Mapping[str, float]) -> list[Check]:
        """The regression guard: each recorded ``quick_reference`` value against the same
        check's value now, within ``quick_rtol`` (relative) + ``quick_atol``."""
        out = []
        for key, ref in self.quick_reference.items():
            now = float(numbers.get(key, math.nan))
            tol = self.quick_rtol * abs(ref) + self.quick_atol
            out.append(Check(f"guard:{key}", now, f"{ref:.6g} +- {tol:.2g} (recorded)",
                             math.isfinite(now) and abs(now - ref) <= tol))
        return out

    def reproduce(self, *, quick: bool = False, seed: int = 0) -> tuple[Outcome, dict[str, Any]]:
        """Run, time and check: ``(outcome, data)``. ``outcome.numbers`` holds every check's
        measured value by name (plain floats, ready for JSON); ``data`` is :meth:`run`'s raw
        output, for :meth:`plot`. A quick run of a phenomenon with a ``quick_reference``
        also carries the guard checks in ``outcome.guard``."""
        start = time.perf_counter()
        data = self.run(quick=quick, seed=seed)
        seconds = time.perf_counter() - start
        checks = self.check(data)
        numbers = {c.name: float(c.measured) for c in checks}
        guard = self.guard(numbers) if quick and self.quick_reference else []
        return Outcome(self.name, checks, numbers, seconds, quick, seed, guard), data


@dataclass(frozen=True)
class PhenomenonInfo(EntryInfo):
    """Flags of a phenomenon entry (its papers.md rows are the entry's ``papers``, equal to the
    class's ``papers``, which a test checks).

    Attributes:
        reproduces: required; False for a phenomenon that honestly fails at CPU scale (its
            docstring says why), so the test suite expects FAIL for it.
        modes: the settings :meth:`Phenomenon.run` offers: ``"quick"`` (``quick=True``, under
            20 s, what the tests run) and ``"full"``.
    """

    reproduces: bool
    modes: tuple[str, ...] = ("quick", "full")


PHENOMENA: Registry[type[Phenomenon]] = Registry("phenomenon", info=PhenomenonInfo)
"""Registered phenomena (flags: :class:`PhenomenonInfo`). ``reproduces`` is the full-mode
verdict the module's docstring reports (False for an honest FAIL at the paper's setting, with
what was tried). Tests never assert a FAIL: a phenomenon's quick run must pass its claim, or,
where it declares a ``quick_reference``, its regression guard."""
