"""``ModuleTree``: the module tree walked once, again exactly when what the walk read has
changed, and a ``generation`` that moves exactly when a walk found a different tree; under
another torch release or with an own walk, a public walk at every call (said once)."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from trainlab import log, module_tree
from trainlab.module_tree import ModuleTree


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(),
                         nn.Sequential(nn.Linear(5, 5), nn.BatchNorm1d(5)), nn.Linear(5, 3))


def signature(model: nn.Module) -> tuple:
    """What the public walk gives, by identity."""
    return ([id(m) for m in model.modules()],
            [(n, id(m)) for n, m in model.named_modules()],
            [(n, id(p)) for n, p in model.named_parameters()])


def check(tree: ModuleTree, model: nn.Module) -> None:
    tree.update()
    assert [id(m) for m in tree.modules] == [id(m) for m in model.modules()]


def _set(where: str, name: str, value_of) -> object:
    """A change writing ``value_of(model)`` into ``model``'s submodule at ``where`` (indices
    joined by dots) as attribute ``name``."""
    def change(model: nn.Module) -> None:
        module = model
        for i in where.split(".") if where else ():
            module = module[int(i)]
        setattr(module, name, value_of(model))
    return change


# name: (change, what it does): "tree" a different tree (walked, a new generation), "same"
# walked again (a dict the walk read was swapped) with the same tree, "kept" not walked
CHANGES = {
    "parameter replaced": (_set("0", "weight", lambda m: nn.Parameter(torch.ones(5, 4))),
                           "tree"),
    "parameter added": (lambda m: m[2][0].register_parameter(
        "extra", nn.Parameter(torch.ones(2))), "tree"),
    "parameter deleted": (lambda m: delattr(m[0], "bias"), "tree"),
    "_parameters written": (lambda m: m[2][0]._parameters.update(
        weight=nn.Parameter(torch.zeros(5, 5))), "tree"),
    "_parameters renamed": (lambda m: m[0]._parameters.update(
        w2=m[0]._parameters.pop("weight")), "tree"),
    "module added": (lambda m: m.append(nn.Linear(3, 2)), "tree"),
    "module replaced": (_set("", "2", lambda m: nn.Linear(5, 5)), "tree"),
    "module deleted": (lambda m: m[2].__delitem__(1), "tree"),
    "module written in the dict": (lambda m: m[2]._modules.update({"1": nn.Identity()}),
                                   "tree"),
    "module renamed": (lambda m: m[2]._modules.update(bn=m[2]._modules.pop("1")), "tree"),
    "BatchNorm added deep": (lambda m: m[2][0].add_module("bn", nn.BatchNorm1d(5)), "tree"),
    "_modules swapped": (_set("2", "_modules", lambda m: {"0": nn.Linear(5, 5)}), "tree"),
    "_parameters swapped for a copy": (
        _set("0", "_parameters", lambda m: dict(m[0]._parameters)), "same"),
    "_modules swapped for a copy": (_set("2", "_modules", lambda m: dict(m[2]._modules)),
                                    "same"),
    "in-place update": (lambda m: m[0].weight.data.mul_(2), "kept"),
    "eval()": (lambda m: m.eval(), "kept"),
    ".data swapped": (lambda m: setattr(m[0].weight, "data", torch.ones(5, 4)), "kept"),
    "frozen": (lambda m: m[0].weight.requires_grad_(False), "kept"),
    "dtype moved": (lambda m: m.double(), "kept"),
    "a module put back": (_set("", "0", lambda m: m[0]), "kept"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_walked_again_exactly_when_the_tree_changed(change):
    model = net()
    tree = ModuleTree(model)
    check(tree, model)
    first = tree.generation
    for _ in range(3):
        check(tree, model)
    assert tree.walks == 1 and tree.kept and tree.generation == first
    before = signature(model)
    apply, effect = CHANGES[change]
    apply(model)
    check(tree, model)
    assert (signature(model) != before) is (effect == "tree")
    assert tree.walks == 1 + (effect != "kept")
    assert (tree.generation != first) is (effect == "tree")
    second = tree.generation
    for _ in range(3):
        check(tree, model)
    assert tree.walks == 1 + (effect != "kept") and tree.generation == second


def test_generations_are_unique_across_trees_and_copies():
    model = net()
    trees = [ModuleTree(model), ModuleTree(model), ModuleTree(net())]
    for tree in trees:
        tree.update()
    assert len({t.generation for t in trees}) == 3
    clone = copy.deepcopy(trees[0])
    assert clone.walks == 0 and clone.model is not model  # of the copied model
    clone.update()
    assert clone.generation not in {t.generation for t in trees}
    assert [type(m) for m in clone.modules] == [type(m) for m in model.modules()]
    restored = pickle.loads(pickle.dumps(trees[0]))
    restored.update()
    assert restored.walks == 1 and restored.generation != trees[0].generation


class _OwnParameters(nn.Sequential):
    def named_parameters(self, *args, **kwargs):  # only the first layer's
        return self[0].named_parameters(*args, **kwargs)


@pytest.mark.parametrize("case", ["another torch", "own walk"])
def test_walked_at_every_call_where_it_cannot_be_checked(monkeypatch, caplog, case):
    """Outside :data:`TREE_TORCH`, or for a module type with its own walk: the public walk
    at every call, said once, and the generation still moves only with the tree."""
    monkeypatch.setattr(log, "_WARNED", set())
    if case == "another torch":
        monkeypatch.setattr(module_tree, "TREE_TORCH", ((1, 0), (1, 1)))
        model = net()
    else:
        model = _OwnParameters(nn.Linear(4, 5), nn.Linear(5, 3))
    tree = ModuleTree(model)
    with caplog.at_level("WARNING", logger="trainlab"):
        for _ in range(3):
            check(tree, model)
        first = tree.generation
        model[0] = nn.Linear(4, 5)
        for _ in range(2):
            check(tree, model)
    assert not tree.kept and tree.walks == 5
    assert tree.generation != first
    messages = [r.message for r in caplog.records]
    want = ("walk the module tree at every step" if case == "another torch"
            else "_OwnParameters overrides named_parameters(): its model's module tree")
    assert sum(want in m for m in messages) == 1 and len(messages) == 1
