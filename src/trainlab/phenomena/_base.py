"""The phenomenon protocol: a paper's claim as an experiment that checks itself."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    """One comparison of a measured number with the paper's claim.

    ``expected`` says the criterion in words with its tolerance (e.g. ``"< 0.01 (1%)"``).
    """

    name: str
    measured: float
    expected: str
    passed: bool


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
