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

from trainlab.log import warn_once
from trainlab.optim._fused_adam import _torch_version

LAYOUT_TORCH = ((2, 6), (2, 13))
"""The torch releases (lowest, highest) whose ``nn.Module`` is known to keep its parameters
and submodules in the dicts ``_parameters`` and ``_modules`` (private attributes) that the
check reads: the project's floor and its pin, both tested. Under another release, or for a
module without those dicts, every call walks the tree through the public
``named_parameters`` (warned once)."""

_WALK = ("named_parameters", "_named_members", "named_modules")
"""``nn.Module`` methods the walk goes through: a module type that overrides one of them is
walked at every call (its own method decides what the parameters are)."""


class TrainableParams:
    """The trainable parameters of ``model`` (``(name, parameter)`` pairs in the order of
    ``model.named_parameters()``, those with ``requires_grad``) and a detached view of each.

    What is checked at each call (:meth:`current`), and walked anew when it changed: every
    module of the last walk still holds the same ``_parameters`` and ``_modules`` dicts,
    with as many entries, each name bound to the same object (a parameter or submodule
    added, removed, renamed or replaced, or a dict swapped); each parameter's
    ``requires_grad``; each parameter's data pointer (a ``.data`` swapped or a move to
    another dtype or device gives new views). A model whose modules override the methods
    of the walk (:data:`_WALK`) is walked at every call.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.named: list[tuple[str, nn.Parameter]] = []
        self.views: dict[str, torch.Tensor] = {}
        self._modules: list[tuple[nn.Module, dict, int, dict, int]] | None = None
        self._entries: list[tuple[dict, str, object]] = []
        self._params: list[nn.Parameter] = []
        self._flags: list[bool] = []
        self._ptrs: list[int] = []
        self._views_key: list[tuple[str, int, int]] | None = None
        self.walks = 0  # how many times the module tree was walked (for tests)

    def current(self) -> tuple[list[tuple[str, nn.Parameter]], dict[str, torch.Tensor]]:
        """The trainable ``(name, parameter)`` pairs and the dict of their detached views;
        both the same objects as at the last call while nothing changed."""
        if not self._unchanged():
            self._walk()
        return self.named, self.views

    def _unchanged(self) -> bool:
        if self._modules is None:
            return False
        for module, params, n_params, children, n_children in self._modules:
            if (module._parameters is not params or len(params) != n_params
                    or module._modules is not children or len(children) != n_children):
                return False
        for where, name, obj in self._entries:
            if where.get(name) is not obj:
                return False
        return ([p.requires_grad for p in self._params] == self._flags
                and [p.data_ptr() for _, p in self.named] == self._ptrs)

    def _walk(self) -> None:
        model = self.model
        self.walks += 1
        modules = list(model.modules())
        plain = all(getattr(type(m), name) is getattr(nn.Module, name)
                    for m in modules for name in _WALK)
        if plain and not (LAYOUT_TORCH[0] <= _torch_version() <= LAYOUT_TORCH[1] and all(
                isinstance(m.__dict__.get("_parameters"), dict)
                and isinstance(m.__dict__.get("_modules"), dict) for m in modules)):
            warn_once("trainable:layout", "torch %s (modules' parameters not checked "
                      "through _parameters/_modules, verified for torch %s-%s): the monitor "
                      "walks named_parameters() at every step", torch.__version__,
                      *(".".join(map(str, v)) for v in LAYOUT_TORCH))
            plain = False
        every = [p for _, p in model.named_parameters()]  # what requires_grad is read of
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._ptrs = [p.data_ptr() for _, p in self.named]
        key = [(n, id(p), ptr) for (n, p), ptr in zip(self.named, self._ptrs)]
        if key != self._views_key:
            self._views_key = key
            self.views = {n: p.detach() for n, p in self.named}
        if not plain:
            self._modules = None
            return
        self._modules = [(m, m._parameters, len(m._parameters), m._modules, len(m._modules))
                         for m in modules]
        self._entries = [(d, name, obj) for m in modules
                         for d in (m._parameters, m._modules) for name, obj in d.items()]
        self._params = every
        self._flags = [p.requires_grad for p in every]
