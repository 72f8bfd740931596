"""One registry mechanism for every pillar: name -> implementation, summary, paper rows and a
typed info record per kind.

The CLI's choices, ``trainlab list``, config validation and the docs are all generated from
these registries, so a new initializer, optimizer, schedule, probe, task, model or phenomenon
becomes visible everywhere the moment it registers.

Each registry declares the flags its entries may carry as a frozen dataclass (a subclass of
:class:`EntryInfo`: field names, types and defaults); ``register(..., **flags)`` builds that
record and raises on an unknown flag or a value of the wrong type. A registry may instead
derive some fields from the registered object itself (optimizers: from the class, so the
class is the single source of truth). There is one registry per kind: creating a second
raises.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from trainlab.errors import TrainlabError, UnknownNameError, check_choice

T = TypeVar("T")


@dataclass(frozen=True)
class EntryInfo:
    """The typed record of what an entry declares beyond name, summary and rows. The base
    declares nothing; a kind with flags subclasses it (one field per flag, with its type and
    default)."""


def _type_ok(value: Any, tp: Any) -> bool:
    """Whether ``value`` fits the annotation ``tp`` (the small subset flags use: plain
    classes, ``Literal``, unions and ``tuple[X, ...]``); ``bool`` is not an ``int`` here."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(v, args[0]) for v in value)
        return len(args) == len(value) and all(_type_ok(v, a) for v, a in zip(value, args))
    if tp is type(None):
        return value is None
    if tp in (int, float) and isinstance(value, bool):
        return False
    if tp is float:
        return isinstance(value, (int, float))
    return isinstance(value, tp)


def make_info(info_type: type[EntryInfo], flags: dict[str, Any], *, owner: str) -> EntryInfo:
    """``info_type(**flags)`` after checking every flag name and value type.

    Raises:
        ConfigError: a flag ``info_type`` does not declare (with the declared ones and close
            matches).
        TrainlabError: a value of the wrong type, or a flag without default left out.
    """
    hints = typing.get_type_hints(info_type)
    declared = [f.name for f in dataclasses.fields(info_type) if f.init]
    missing = [f.name for f in dataclasses.fields(info_type) if f.init and f.name not in flags
               and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise TrainlabError(f"{owner} needs the flag(s) {missing}")
    for key, value in flags.items():
        check_choice("flag", key, declared, owner=owner)
        if not _type_ok(value, hints[key]):
            raise TrainlabError(f"{owner}: flag {key!r} must be {hints[key]}; got {value!r}")
    return info_type(**flags)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered implementation.

    Attributes:
        name: the public name (CLI, configs).
        obj: the implementation (a function, a class or a factory).
        summary: one line saying what it is.
        papers: rows of ``papers.md`` this entry implements (empty for standard methods).
        kind: the registry kind ("init", "optimizer", ...).
        info: the kind's typed record (e.g. an optimizer's ``needs_closure``, a probe's
            metric names).
    """

    name: str
    obj: T
    summary: str
    papers: tuple[int, ...] = ()
    kind: str = ""
    info: EntryInfo = field(default_factory=EntryInfo)

    @property
    def flags(self) -> dict[str, Any]:
        """The info record as a plain dict (for listings and JSON)."""
        return dataclasses.asdict(self.info)


class Registry(Generic[T]):
    """A name -> :class:`Entry` map with helpful errors.

    Args:
        kind: the kind of entry ("optimizer", "probe", ...); one registry per kind.
        info: the dataclass of the flags entries may carry (default: none).
        derive: ``obj -> {flag: value}``, flags read from the registered object itself;
            passing one of those to :meth:`register` raises (one source of truth).

    Registering a name twice raises; looking up an unknown name raises
    :class:`~trainlab.errors.UnknownNameError` listing close matches and every valid name.
    """

    def __init__(self, kind: str, *, info: type[EntryInfo] = EntryInfo,
                 derive: Callable[[Any], dict[str, Any]] | None = None):
        if kind in _ALL:
            raise TrainlabError(f"a registry of kind {kind!r} already exists "
                                f"({_ALL[kind]!r}); register entries there")
        self.kind = kind
        self.info = info
        self._derive = derive
        self._entries: dict[str, Entry[T]] = {}
        _ALL[kind] = self

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"

    def register(
        self,
        name: str,
        obj: T | None = None,
        *,
        summary: str,
        papers: tuple[int, ...] | list[int] = (),
        **flags: Any,
    ) -> Any:
        """Register ``obj`` under ``name``; without ``obj`` acts as a decorator. ``flags`` must
        be fields of this registry's info type, with values of their declared types."""

        def add(o: T) -> T:
            owner = f"{self.kind} {name!r}"
            if name in self._entries:
                raise TrainlabError(f"{owner} is already registered")
            if not summary or "\n" in summary:
                raise TrainlabError(f"{owner} needs a one-line summary")
            values = dict(flags)
            if self._derive is not None:
                derived = self._derive(o)
                given = sorted(set(flags) & set(derived))
                if given:
                    raise TrainlabError(f"{owner}: {given} come from the object itself (its "
                                        f"class attributes), not from the registration")
                values.update(derived)
            info = make_info(self.info, values, owner=owner)
            self._entries[name] = Entry(name, o, summary, tuple(papers), self.kind, info)
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

# The packages whose modules fill the registries; every module under them is imported.
_PILLARS = (
    "trainlab.init",
    "trainlab.optim",
    "trainlab.analyses",
    "trainlab.probes",
    "trainlab.tasks",
    "trainlab.models",
    "trainlab.phenomena",
    "trainlab.theory",
    "trainlab.inspect",
    "trainlab.pinn",
    "trainlab.diffusion",
    "trainlab.minimax",
    "trainlab.bilevel",
)


def pillar_modules() -> list[str]:
    """Every module of the pillar packages (subpackages included), by name."""
    names = []
    for pillar in _PILLARS:
        pkg = importlib.import_module(pillar)
        names.append(pillar)
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pillar + ".")]
    return names


_discovered = False


def all_registries() -> dict[str, Registry[Any]]:
    """Every registry, after importing every module of every pillar and the users' plug-ins
    (entry points and ``TRAINLAB_IMPORT`` modules, :mod:`trainlab.plugins`), keyed by kind.

    The pillars are walked and imported once per process (the walk reads the package folders:
    about 4 ms a call, which every config validation paid five times); later calls load
    plug-ins again only after :func:`trainlab.plugins.reset` (:func:`trainlab.plugins.load`
    is idempotent until then)."""
    global _discovered
    if not _discovered:
        for mod in pillar_modules():
            importlib.import_module(mod)
        _discovered = True
    from trainlab import plugins

    plugins.load(_ALL)
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
