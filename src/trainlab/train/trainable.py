"""A model's trainable parameters by name, walked once and re-checked cheaply at each step.

A monitor needs, at every step where a probe is due, the model's trainable parameters as
``model.named_parameters()`` gives them (names, order, shared parameters once) and a
detached view of each. Walking the module tree through ``named_parameters`` costs tens of
microseconds a step on a small model (generators, a memo set, name strings), as much as
some of the probes; :class:`TrainableParams` walks it once and, at the next steps, checks
that nothing the walk read has changed, which costs a few attribute reads per module and
parameter, and walks again when something has.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.module_tree import ModuleTree


class TrainableParams:
    """The trainable parameters of ``model`` (``(name, parameter)`` pairs in the order of
    ``model.named_parameters()``, those with ``requires_grad``) and a detached view of each.

    What is checked at each call (:meth:`current`), and walked anew when it changed: the
    module tree (:class:`~trainlab.module_tree.ModuleTree`: a parameter or submodule added,
    removed, renamed or replaced, or a dict swapped); each parameter's ``requires_grad``;
    each parameter's data pointer (a ``.data`` swapped or a move to another dtype or device
    gives new views). A tree that cannot be checked cheaply (another torch release, a module
    type with its own walk: see :data:`~trainlab.module_tree.TREE_WALK`) is walked at every
    call.

    Attributes:
        tree: the model's :class:`~trainlab.module_tree.ModuleTree`, up to date after each
            :meth:`current` (other users of the tree read it then, e.g. the probes through
            the monitor's context).
        walks: how many times the parameters were walked (for tests).
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.tree = ModuleTree(model)
        self.named: list[tuple[str, nn.Parameter]] = []
        self.views: dict[str, torch.Tensor] = {}
        self._generation = -1  # the tree's generation at the last walk
        self._params: list[nn.Parameter] = []
        self._flags: list[bool] = []
        self._ptrs: list[int] = []
        self._views_key: list[tuple[str, int, int]] | None = None
        self.walks = 0

    def current(self) -> tuple[list[tuple[str, nn.Parameter]], dict[str, torch.Tensor]]:
        """The trainable ``(name, parameter)`` pairs and the dict of their detached views;
        both the same objects as at the last call while nothing changed."""
        self.tree.update()
        if not self._unchanged():
            self._walk()
        return self.named, self.views

    def _unchanged(self) -> bool:
        tree = self.tree
        return (tree.kept and tree.generation == self._generation
                and [p.requires_grad for p in self._params] == self._flags
                and [p.data_ptr() for _, p in self.named] == self._ptrs)

    def _walk(self) -> None:
        self.walks += 1
        self._generation = self.tree.generation
        every = self.tree.named_params  # this call's (the tree was updated first)
        self._params = [p for _, p in every]  # what requires_grad is read of
        self._flags = [p.requires_grad for p in self._params]
        self.named = [(n, p) for n, p in every if p.requires_grad]
        self._ptrs = [p.data_ptr() for _, p in self.named]
        key = [(n, id(p), ptr) for (n, p), ptr in zip(self.named, self._ptrs)]
        if key != self._views_key:
            self._views_key = key
            self.views = {n: p.detach() for n, p in self.named}
