"""``grad-noise``'s BatchNorm check walks the module tree only when it changed
(:class:`~trainlab.probes.per_sample.BatchNormWatch`), and never misses a change of mode: at
every call it answers as :func:`~trainlab.probes.per_sample.training_batchnorm` (the walk of
``model.modules()``), over every kind of change of the tree and of the layers' modes."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import monitored_steps
from torch import nn

from trainlab.probes import build_probes
from trainlab.probes.per_sample import BatchNormWatch, training_batchnorm
from trainlab.train import Monitor


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(),
                         nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6), nn.ReLU()),
                         nn.Linear(6, 3))


def check(watch: BatchNormWatch, model: nn.Module) -> bool:
    got = watch(model)
    assert got is training_batchnorm(model)
    return got


def _set_inner(model: nn.Module, layer: nn.Module) -> None:
    model[2][1] = layer  # Sequential.__setitem__ (setattr)


def _direct(model: nn.Module, layer: nn.Module) -> None:
    model[2]._modules["1"] = layer  # written into the dict, no setattr


# (change, whether it changes the tree): each applied to a model in training mode
CHANGES = {
    "model.eval()": (lambda m: m.eval(), False),
    "model.train()": (lambda m: m.eval().train(), False),
    "the layer's own eval()": (lambda m: m[2][1].eval(), False),
    "the layer's flag written": (lambda m: setattr(m[2][1], "training", False), False),
    "layer replaced (setitem)": (lambda m: _set_inner(m, nn.Identity()), True),
    "layer replaced in the dict": (lambda m: _direct(m, nn.Identity()), True),
    "layer deleted": (lambda m: delattr(m[2], "1"), True),
    "BatchNorm added (setattr)": (lambda m: setattr(m[0], "extra", nn.BatchNorm1d(6)), True),
    "BatchNorm added deep": (lambda m: m[2][2].add_module("bn", nn.BatchNorm1d(6)), True),
    "BatchNorm added in the dict": (
        lambda m: m[1]._modules.__setitem__("bn", nn.BatchNorm1d(6)), True),
    "block replaced": (lambda m: setattr(m, "2", nn.Sequential(nn.Linear(6, 6))), True),
    "block's dict swapped": (
        lambda m: setattr(m[2], "_modules", {"0": nn.Linear(6, 6)}), True),
    "same layer renamed": (
        lambda m: m[2]._modules.__setitem__("bn", m[2]._modules.pop("1")), True),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_change_is_seen_and_walked_only_when_the_tree_changed(change):
    model = net().train()
    watch = BatchNormWatch()
    for _ in range(3):
        assert check(watch, model)
    assert watch.walks == 1
    apply, tree_changed = CHANGES[change]
    original = model[2][1]
    apply(model)
    for _ in range(3):
        check(watch, model)
    original.eval()  # what is left training: only a BatchNorm the change added
    check(watch, model)
    assert watch.walks == 1 + tree_changed
    # and back to training mode, and a BatchNorm put (back) in place
    model.train()
    model[2]._modules["1"] = nn.BatchNorm1d(6)
    for _ in range(2):
        assert check(watch, model)


def test_mode_switched_at_every_call_and_other_models():
    model, other = net(), nn.Sequential(nn.Linear(4, 3))
    watch = BatchNormWatch()
    for k in range(12):
        model.train(k % 3 != 0)
        assert check(watch, model) is (k % 3 != 0)
    assert watch.walks == 1
    assert not check(watch, other)  # another model: walked
    assert check(watch, model.train())
    assert watch.walks == 3


class _OwnWalk(nn.Sequential):
    """A model whose ``named_modules`` hides its BatchNorm layers."""

    def named_modules(self, *args, **kwargs):
        for name, module in super().named_modules(*args, **kwargs):
            if not isinstance(module, nn.BatchNorm1d):
                yield name, module


def test_walked_at_every_call_outside_the_verified_releases_or_with_an_own_walk(
        monkeypatch, caplog):
    """The private ``_modules`` check only under the verified releases and for types that
    keep ``nn.Module``'s walk; elsewhere the tree is walked at every call (said once), with
    the same answers."""
    from trainlab import log, module_tree

    monkeypatch.setattr(log, "_WARNED", set())
    model = net()
    hidden = _OwnWalk(nn.Linear(4, 4), nn.BatchNorm1d(4))
    with caplog.at_level("WARNING", logger="trainlab"):
        watch = BatchNormWatch()
        for k in range(4):
            assert check(watch, hidden.train(k % 2 == 0)) is False
        assert watch.walks == 4
        monkeypatch.setattr(module_tree, "TREE_TORCH", ((1, 0), (1, 1)))
        watch = BatchNormWatch()
        for k in range(4):
            assert check(watch, model.train(k % 2 == 0)) is (k % 2 == 0)
        model[2][1] = nn.Identity()
        assert not check(watch, model.train())
        assert watch.walks == 5
    messages = [r.message for r in caplog.records]
    assert sum("_OwnWalk overrides named_modules(): its model's module tree is walked at "
               "every step" in m for m in messages) == 1
    assert sum("grad-noise's BatchNorm check walk the module tree at every step" in m
               for m in messages) == 1


def test_copies_start_without_the_kept_tree():
    model = net()
    watch = BatchNormWatch()
    check(watch, model)
    for clone in (copy.deepcopy(watch), pickle.loads(pickle.dumps(watch))):
        assert clone.walks == 0
        assert check(clone, model) and clone.walks == 1


def test_grad_noise_follows_train_and_eval_switches_between_steps():
    """In a monitor, the steps in training mode take the two-batch estimate (no ``gsnr``) and
    those in eval mode the per-example one, as the mode is at each step."""
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes("grad-noise", every=1))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
    modes = [True, False, False, True, False, True, True, False]
    for training in modes:
        model.train(training)
        monitored_steps(mon, model, opt, F.cross_entropy, x, y, 1)
    mon.finish()
    assert [s for s, _ in mon.history["gsnr"]] == [k for k, t in enumerate(modes) if not t]
    assert [s for s, _ in mon.history["gns/trace_cov_stderr"]] == [
        k for k, t in enumerate(modes) if t]


def test_in_a_monitor_grad_noise_reads_the_monitors_tree(monkeypatch):
    """Inside a monitor grad-noise walks no tree of its own: its BatchNorm check follows the
    monitor's tree (a BatchNorm added or removed between steps counts at once), and the
    parameters' layout is asked again only when the tree or the parameters changed."""
    from trainlab.probes import gradient_noise

    calls = []
    layout = gradient_noise._linear_layout
    monkeypatch.setattr(gradient_noise, "_linear_layout",
                        lambda *a: calls.append(1) or layout(*a))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Sequential(nn.Linear(6, 6)),
                          nn.Linear(6, 3))
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes("grad-noise", every=1))
    probe = mon.probes[0]
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
    for step in range(7):
        if step == 3:
            model[2].append(nn.BatchNorm1d(6))
        elif step == 5:
            del model[2][1]
        monitored_steps(mon, model, opt, F.cross_entropy, x, y, 1)
    mon.finish()
    assert [s for s, _ in mon.history["gsnr"]] == [0, 1, 2, 5, 6]
    assert [s for s, _ in mon.history["gns/trace_cov_stderr"]] == [3, 4]
    assert probe._batchnorm.walks == 0
    assert len(calls) == 2  # steps 0 and 5: a new tree and new parameters
