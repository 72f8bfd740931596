"""The phenomenon protocol: a paper's claim as an experiment that checks itself."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from trainlab.registry import EntryInfo, Registry


@dataclass(frozen=True)
class Check:
    """One comparison of a measured number with the paper's claim.

    ``expected`` says the criterion in words with its tolerance (e.g. ``"< 0.01 (1%)"``).
    """

    name: str
    measured: float
    expected: str
    passed: bool

    def __post_init__(self) -> None:  # numpy scalars in, plain Python values out (JSON)
        object.__setattr__(self, "measured", float(self.measured))
        object.__setattr__(self, "passed", bool(self.passed))


@dataclass
class Outcome:
    """The result of a phenomenon: PASS iff every check passed."""

    name: str
    checks: list[Check]
    numbers: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)


class Phenomenon(ABC):
    """Subclasses set ``name``, ``papers`` (rows), ``claim`` (one sentence) and implement
    :meth:`run`, :meth:`check` and :meth:`plot`.

    ``run(quick=True)`` must finish in under 20 s on 2 CPU cores (used by the tests); the full
    setting in a few minutes. The pass criterion in :meth:`check` is written from the paper's
    claim, with its tolerance and the reason for it, before any tuning.
    """

    name: str = ""
    papers: tuple[int, ...] = ()
    claim: str = ""

    @abstractmethod
    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        """Run the experiment and return its raw data (arrays, curves, numbers)."""

    @abstractmethod
    def check(self, data: dict[str, Any]) -> list[Check]:
        """Compare the data with the paper's claim."""

    def plot(self, data: dict[str, Any]) -> Any:
        """A matplotlib figure of the data (or None)."""
        return None

    def reproduce(self, *, quick: bool = False, seed: int = 0) -> tuple[Outcome, dict[str, Any]]:
        """Run, time and check: ``(outcome, data)``. ``outcome.numbers`` holds every check's
        measured value by name (plain floats, ready for JSON); ``data`` is :meth:`run`'s raw
        output, for :meth:`plot`."""
        start = time.perf_counter()
        data = self.run(quick=quick, seed=seed)
        seconds = time.perf_counter() - start
        checks = self.check(data)
        numbers = {c.name: float(c.measured) for c in checks}
        return Outcome(self.name, checks, numbers, seconds), data


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
"""Registered phenomena (flags: :class:`PhenomenonInfo`)."""
