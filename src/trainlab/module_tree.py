"""A model's module tree, walked once and re-checked cheaply at each call.

Code that needs, at every training step, something derived from the module tree (the
monitor's trainable parameters, grad-noise's BatchNorm layers and parameter layout) would
walk ``model.modules()`` / ``named_parameters()`` each time: tens of microseconds a step on
a small model (generators, a memo set, name strings), as much as some probes.
:class:`ModuleTree` walks the tree once and, at the next calls, checks that nothing the
walk read has changed (a few attribute reads per module and dict entry); it walks again
only then, and its :attr:`~ModuleTree.generation` changes exactly when such a walk found a
different tree, so every user can key what it derived on one number.

The check reads ``nn.Module``'s private dicts ``_parameters`` and ``_modules``. It runs only
under the torch releases :data:`TREE_TORCH` and for module types that keep ``nn.Module``'s
walk (:data:`TREE_WALK`); otherwise the tree is walked at every call (warned once).
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from trainlab.log import warn_once
from trainlab.optim._fused_adam import _torch_version

TREE_TORCH = ((2, 6), (2, 13))
"""The torch releases (lowest, highest) whose ``nn.Module`` is known to keep its parameters
and submodules in the dicts ``_parameters`` and ``_modules`` (private attributes) that
``modules()`` and ``named_parameters()`` walk and that :class:`ModuleTree` checks: the
project's floor and its pin, both tested. Under another release, or for a module without
those dicts, the tree is walked at every call through the public methods (warned once)."""

TREE_WALK = ("modules", "named_modules", "named_parameters", "_named_members")
"""``nn.Module`` methods a walk goes through: a model with a module type that overrides one
of them is walked at every call (its own method decides what the modules or parameters are;
warned once per type)."""

_GENERATIONS = itertools.count(1)
"""Generation numbers, unique in the process: equal numbers mean the same walk of the same
tree object, also across copies and different models."""


class ModuleTree:
    """The module tree of ``model`` as the last walk found it.

    :meth:`update` checks, and walks again when it changed: every module of the last walk
    still holds the same ``_parameters`` and ``_modules`` dicts, with as many entries, each
    name bound to the same object (a parameter or submodule added, removed, renamed or
    replaced, or a dict swapped). Not noticed: entries of a dict reordered in place, and a
    module whose class is swapped in place (``module.__class__ = ...``). A parameter's
    ``requires_grad`` and data are not part of the tree (users check them).

    Attributes:
        model: the model (held: the walk keeps its modules anyway).
        modules: ``list(model.modules())`` at the last walk (None before the first).
        named_params: ``list(model.named_parameters())`` at the last walk (every
            parameter, trainable or not; read it after :meth:`update`).
        generation: changes exactly when a walk found a tree different from the one before
            (other modules, or other ``(name, object)`` pairs of ``named_modules()`` or
            ``named_parameters()``); unique in the process, so a user keeps the number its
            derived values belong to and compares.
        kept: whether the last :meth:`update` could check the tree cheaply; False under
            another torch release or with an own walk: every call walks.
        walks: how many times the tree was walked (for tests).
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.modules: list[nn.Module] | None = None
        self.named_params: list[tuple[str, nn.Parameter]] = []
        self.generation = 0
        self.kept = False
        self.walks = 0
        self._tree: list[tuple[nn.Module, dict, int, dict, int]] = []
        self._entries: list[tuple[dict, str, object]] = []
        self._signature: tuple[Any, ...] | None = None
        self._held: tuple[Any, ...] = ()  # the objects whose ids the signature holds

    def update(self) -> bool:
        """Check the tree and walk it again when it changed (or cannot be checked); returns
        whether it was walked."""
        if self.kept and self._unchanged():
            return False
        self._walk()
        return True

    def _unchanged(self) -> bool:
        for module, params, n_params, children, n_children in self._tree:
            if (module._parameters is not params or len(params) != n_params
                    or module._modules is not children or len(children) != n_children):
                return False
        for where, name, obj in self._entries:  # noqa: SIM110  (a loop: no generator)
            if where.get(name) is not obj:
                return False
        return True

    def _walk(self) -> None:
        model = self.model
        self.walks += 1
        modules = list(model.modules())
        self.modules = modules
        self.kept = _checkable(modules)
        if self.kept:
            self._tree = [(m, m._parameters, len(m._parameters), m._modules, len(m._modules))
                          for m in modules]
            self._entries = [(d, name, obj) for m in modules
                             for d in (m._parameters, m._modules) for name, obj in d.items()]
        else:
            self._tree, self._entries = [], []
        named_modules = list(model.named_modules())
        named_params = self.named_params = list(model.named_parameters())
        signature = (tuple(id(m) for m in modules),
                     tuple((n, id(m)) for n, m in named_modules),
                     tuple((n, id(p)) for n, p in named_params))
        if signature != self._signature:  # both signatures' objects are alive here
            self.generation = next(_GENERATIONS)
            self._signature = signature
            self._held = (modules, named_modules, named_params)

    def __reduce__(self) -> tuple[type, tuple[nn.Module]]:
        """Copies and pickles start unwalked (of the copied model)."""
        return ModuleTree, (self.model,)


def _checkable(modules: list[nn.Module]) -> bool:
    """Whether the private check applies to these modules (said once where it does not)."""
    for m in modules:
        own = [name for name in TREE_WALK if getattr(type(m), name) is not getattr(nn.Module, name)]
        if own:
            warn_once(f"module-tree:walk:{type(m).__module__}.{type(m).__qualname__}",
                      "module type %s overrides %s(): its model's module tree is walked at "
                      "every step (slower, same answers)", type(m).__name__, "(), ".join(own))
            return False
    if not (TREE_TORCH[0] <= _torch_version() <= TREE_TORCH[1] and all(
            isinstance(m.__dict__.get("_parameters"), dict)
            and isinstance(m.__dict__.get("_modules"), dict) for m in modules)):
        warn_once("module-tree:layout", "torch %s (module trees not checked through "
                  "_parameters/_modules, verified for torch %s-%s): the monitor's trainable "
                  "parameters and grad-noise's BatchNorm check walk the module tree at every "
                  "step (slower, same answers)", torch.__version__,
                  *(".".join(map(str, v)) for v in TREE_TORCH))
        return False
    return True
