"""``TrainableParams``: the module tree walked once, and again exactly when what the walk
read has changed; at every call the pairs of ``named_parameters()`` (trainable ones) and
views of the current data."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.train.trainable import TrainableParams


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Sequential(nn.Linear(5, 3)))


def check(watch: TrainableParams, model: nn.Module) -> None:
    """What :meth:`current` gives is what a fresh walk gives: the same (name, parameter)
    objects in order, and a view of each parameter's current data."""
    named, views = watch.current()
    want = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert [n for n, _ in named] == [n for n, _ in want]
    assert all(p is q for (_, p), (_, q) in zip(named, want))
    assert list(views) == [n for n, _ in want]
    for (_, p), v in zip(want, views.values()):
        assert v.data_ptr() == p.data_ptr() and v.dtype == p.dtype and v.shape == p.shape
        assert not v.requires_grad


def test_walked_once_while_nothing_changes():
    model = net()
    watch = TrainableParams(model)
    first = watch.current()
    for _ in range(5):
        with torch.no_grad():
            model[0].weight.mul_(1.5)  # in place: no new walk, the views follow
        assert watch.current()[1] is first[1]
        check(watch, model)
    assert watch.walks == 1


CHANGES = {
    "parameter replaced": lambda m: setattr(m[0], "weight", nn.Parameter(torch.ones(5, 4))),
    "parameter added": lambda m: m[2][0].register_parameter("extra", nn.Parameter(torch.ones(2))),
    "parameter deleted": lambda m: delattr(m[0], "bias"),
    "_parameters written": lambda m: m[2][0]._parameters.__setitem__(
        "weight", nn.Parameter(torch.zeros(3, 5))),
    "_parameters renamed": lambda m: m[0]._parameters.__setitem__(
        "w2", m[0]._parameters.pop("weight")),
    "_parameters swapped": lambda m: setattr(m[0], "_parameters", dict(m[0]._parameters)) or
    m[0]._parameters.__setitem__("bias", nn.Parameter(torch.ones(5))),
    "module added": lambda m: m.append(nn.Linear(3, 2)),
    "module replaced": lambda m: m.__setitem__(2, nn.Linear(5, 3)),
    "module deleted": lambda m: m[2].__delitem__(0),
    ".data swapped": lambda m: setattr(m[0].weight, "data", torch.ones(5, 4)),
    "dtype moved": lambda m: m.double(),
    "frozen": lambda m: m[0].weight.requires_grad_(False),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_change_is_walked_again(change):
    model = net()
    watch = TrainableParams(model)
    check(watch, model)
    views = watch.current()[1]
    CHANGES[change](model)
    check(watch, model)
    assert watch.walks == 2
    if change in (".data swapped", "dtype moved"):  # the same objects, new data: new views
        assert watch.current()[1] is not views
    check(watch, model)
    assert watch.walks == 2  # and kept again after


def test_a_module_with_its_own_walk_is_walked_every_time():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

        def named_parameters(self, *args, **kwargs):  # only a's parameters
            return self.a.named_parameters(*args, **kwargs)

    model = Custom()
    watch = TrainableParams(model)
    for _ in range(3):
        check(watch, model)
    assert watch.walks == 3
    assert [n for n, _ in watch.current()[0]] == ["weight", "bias"]


def test_shared_parameters_are_listed_once():
    model = net()
    tied = nn.Linear(5, 5)
    model.append(tied)
    model.append(tied)  # the same module twice
    watch = TrainableParams(model)
    check(watch, model)
    tied.weight = nn.Parameter(torch.zeros(5, 5))
    check(watch, model)


@pytest.mark.parametrize("change", ["parameter replaced", ".data swapped", "frozen"])
def test_outside_the_verified_torch_releases_the_public_walk_runs_every_time(
        monkeypatch, caplog, change):
    """The private ``_parameters``/``_modules`` check only under the verified releases
    (:data:`~trainlab.module_tree.TREE_TORCH`); elsewhere ``named_parameters`` at every
    call, said once, with the same pairs and views."""
    from trainlab import log, module_tree

    monkeypatch.setattr(log, "_WARNED", set())
    monkeypatch.setattr(module_tree, "TREE_TORCH", ((1, 0), (1, 1)))
    model = net()
    watch = TrainableParams(model)
    with caplog.at_level("WARNING", logger="trainlab"):
        for _ in range(3):
            check(watch, model)
        CHANGES[change](model)
        check(watch, model)
    assert watch.walks == 4
    assert sum("the monitor's trainable parameters and grad-noise's BatchNorm check walk "
               "the module tree at every step" in r.message for r in caplog.records) == 1
