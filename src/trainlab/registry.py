"""One registry mechanism for every pillar: name -> implementation, summary and paper rows.

The CLI's choices, ``trainlab list``, config validation and the docs are all generated from
these registries, so a new initializer, optimizer, schedule, probe, task, model or phenomenon
becomes visible everywhere the moment it registers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from trainlab.errors import TrainlabError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered implementation.

    Attributes:
        name: the public name (CLI, configs).
        obj: the implementation (a function, a class or a factory).
        summary: one line saying what it is.
        papers: rows of ``papers.md`` this entry implements (empty for standard methods).
        kind: the registry kind ("init", "optimizer", ...).
        flags: capability flags (e.g. ``{"needs_batch": True}``).
    """

    name: str
    obj: T
    summary: str
    papers: tuple[int, ...] = ()
    kind: str = ""
    flags: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """A name -> :class:`Entry` map with helpful errors.

    Registering a name twice raises; looking up an unknown name raises
    :class:`~trainlab.errors.UnknownNameError` listing close matches and every valid name.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        _ALL[kind] = self

    def register(
        self,
        name: str,
        obj: T | None = None,
        *,
        summary: str,
        papers: tuple[int, ...] | list[int] = (),
        **flags: Any,
    ) -> Any:
        """Register ``obj`` under ``name``; without ``obj`` acts as a decorator."""

        def add(o: T) -> T:
            if name in self._entries:
                raise TrainlabError(f"{self.kind} {name!r} is already registered")
            if not summary or "\n" in summary:
                raise TrainlabError(f"{self.kind} {name!r} needs a one-line summary")
            self._entries[name] = Entry(name, o, summary, tuple(papers), self.kind, dict(flags))
            return o

        return add if obj is None else add(obj)

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


_ALL: dict[str, Registry[Any]] = {}

# The modules whose import fills the registries.
_PILLARS = (
    "trainlab.init",
    "trainlab.optim",
    "trainlab.optim.estimators",
    "trainlab.optim.procedures",
    "trainlab.probes",
    "trainlab.probes.analyses",
    "trainlab.tasks",
    "trainlab.models",
    "trainlab.phenomena",
    "trainlab.theory.catalog",
    "trainlab.inspect",
    "trainlab.minimax",
    "trainlab.bilevel",
)


def all_registries() -> dict[str, Registry[Any]]:
    """Every registry, after importing all pillars, keyed by kind."""
    for mod in _PILLARS:
        importlib.import_module(mod)
    return dict(sorted(_ALL.items()))


def entries_for_paper(row: int) -> list[Entry[Any]]:
    """All registry entries (any kind) that implement row ``row`` of papers.md."""
    return [e for reg in all_registries().values() for e in reg.entries() if row in e.papers]


def lookup(kind: str) -> Registry[Any]:
    regs = all_registries()
    if kind not in regs:
        raise UnknownNameError("registry", kind, regs)
    return regs[kind]


Factory = Callable[..., Any]
