"""Users' own tasks, models, inits, optimizers, probes, ... registered from outside trainlab.

Two ways, both before any name is looked up (:func:`trainlab.registry.all_registries` calls
:func:`load` once per process):

- **Entry points** of an installed package, one group per registry: ``trainlab.tasks``,
  ``trainlab.models``, ``trainlab.inits``, ``trainlab.optimizers``, ``trainlab.probes``,
  ``trainlab.schedules``, ... (:func:`entry_point_group`). An entry point names a module
  whose import registers its entries (``TASKS.register(...)``), or an object: an object its
  own module did not register is registered under the entry point's name, with the first
  line of its docstring as the summary (registries whose entries need flags, such as probes
  with their ``metrics``, need the module form). In ``pyproject.toml``::

      [project.entry-points."trainlab.tasks"]
      my-data = "mypkg.data:my_data"          # a task factory returning a trainlab Task
      [project.entry-points."trainlab.models"]
      my-net = "mypkg.models:my_net"          # (input_shape, num_outputs, **params) -> Module

- **Modules named at run time**: ``trainlab run --import mypkg.module`` (or the
  ``TRAINLAB_IMPORT`` environment variable, a comma-separated list, which the CLI sets so
  that worker processes of ``trainlab compare`` import the same modules).

A plug-in that fails to import is reported on the ``trainlab`` logger and skipped (the rest
of trainlab keeps working); a module named by ``--import`` that fails raises.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from importlib import metadata
from typing import Any

from trainlab.errors import ConfigError
from trainlab.log import LOGGER

ENV = "TRAINLAB_IMPORT"

_PLURAL = {"analysis": "analyses", "phenomenon": "phenomena", "theory": "theories"}
_loaded = False


def entry_point_group(kind: str) -> str:
    """The entry-point group of registry ``kind``: ``"task"`` -> ``"trainlab.tasks"``."""
    return f"trainlab.{_PLURAL.get(kind, kind + 's')}"


def import_modules(names: list[str] | tuple[str, ...]) -> list[types.ModuleType]:
    """Import modules by name (their imports register entries); the current directory is
    searched too, as ``python -m`` would. Raises :class:`ConfigError` for a missing module."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    mods = []
    for name in filter(None, (n.strip() for n in names)):
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            raise ConfigError(f"--import {name}: {exc}") from None
    return mods


def register_from_environment(names: list[str] | tuple[str, ...]) -> None:
    """Import ``names`` now and add them to ``TRAINLAB_IMPORT`` for child processes."""
    import_modules(names)
    known = [n for n in os.environ.get(ENV, "").split(",") if n]
    os.environ[ENV] = ",".join(known + [n for n in names if n not in known])


def _register_object(registry: Any, name: str, obj: Any, source: str) -> None:
    if name in registry:
        if registry.get(name) is not obj:
            LOGGER.warning("plug-in %s: %s %r is already registered; the plug-in's entry is "
                           "ignored", source, registry.kind, name)
        return
    summary = ((getattr(obj, "__doc__", None) or "").strip().splitlines() or [""])[0]
    registry.register(name, obj, summary=summary or f"{name} (from {source})")


def load_entry_points(registries: dict[str, Any]) -> list[str]:
    """Load every ``trainlab.*`` entry point of the installed distributions into
    ``registries`` (kind -> Registry); returns ``"group:name"`` of those loaded."""
    loaded = []
    everything = metadata.entry_points()  # one scan of the installed distributions
    for kind, registry in registries.items():
        group = entry_point_group(kind)
        for ep in everything.select(group=group):
            source = f"{group}:{ep.name} = {ep.value}"
            try:
                obj = ep.load()
                if not isinstance(obj, types.ModuleType):
                    _register_object(registry, ep.name, obj, source)
            except Exception as exc:  # a broken plug-in must not break trainlab
                LOGGER.warning("plug-in %s failed and is skipped: %s: %s", source,
                               type(exc).__name__, exc)
                continue
            loaded.append(f"{group}:{ep.name}")
    return loaded


def load(registries: dict[str, Any]) -> None:
    """Once per process: the entry points, then the modules named in ``TRAINLAB_IMPORT``."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # first: a plug-in that looks a name up must not load plug-ins again
    load_entry_points(registries)
    env = [n for n in os.environ.get(ENV, "").split(",") if n.strip()]
    if env:
        import_modules(env)


def reset() -> None:
    """Load plug-ins again at the next :func:`load` (for tests and long-lived sessions
    after installing a package)."""
    global _loaded
    _loaded = False
