"""The private torch facts the in-loop capture relies on are verified on this torch, and the
probes give the same numbers when any is unavailable (the public fallbacks)."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import trainlab.probes._autograd_internals as internals
from trainlab.train import Monitor


def test_known_node_layouts_hold_on_this_torch():
    assert internals.product_node_slots() == internals.KNOWN_SLOTS


def test_the_check_leaves_the_global_rng_alone():
    internals.product_node_slots.cache_clear()
    state = torch.get_rng_state()
    internals.product_node_slots()
    assert torch.equal(torch.get_rng_state(), state)


def test_unknown_layout_is_dropped_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(internals, "KNOWN_SLOTS", {"AddmmBackward0": (1, 0),  # wrong slots
                                                   "MmBackward0": (1, None)})
    internals.product_node_slots.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="trainlab"):
            slots = internals.product_node_slots()
        assert slots == {"MmBackward0": (1, None)}
        assert any("layout trainlab does not know" in r.message for r in caplog.records)
    finally:
        internals.product_node_slots.cache_clear()


def test_missing_functorch_query_means_capture_nothing(caplog):
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        assert internals.functorch_transforms_active(None) is True
    assert internals.functorch_transforms_active(lambda: False) is False


def _economy_history() -> dict[str, list[tuple[int, float]]]:
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 5)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(32, 12, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (32,), generator=g)
    with Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, probes="economy", every=1,
                 total_steps=3) as mon:
        for _ in range(4):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            mon.step(loss, (x, y))
            opt.step()
    return mon.history


def test_missing_version_counters_mean_no_recorded_gradient(caplog, monkeypatch):
    from trainlab import log as log_module

    monkeypatch.setattr(log_module, "_WARNED", set())
    assert internals._counts_versions() and internals._VERSIONED  # on this torch
    t = torch.zeros(3)
    assert internals.versions(t, None) == (0, None)
    t[1:].add_(1)  # through a view: the same counter
    assert internals.versions(None, t) == (None, 1)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        assert internals.versions(t, t, versioned=False) is None
    assert "no Tensor._version" in caplog.text


@pytest.mark.parametrize("fallback", ["no-node-layouts", "no-functorch-query",
                                      "no-version-counter"])
def test_probes_give_the_same_numbers_on_the_fallback_paths(monkeypatch, fallback):
    import trainlab.probes.per_sample as per_sample

    monkeypatch.setattr(per_sample, "REUSE_MIN_WEIGHTS", 0)
    reference = _economy_history()
    if fallback == "no-node-layouts":
        monkeypatch.setattr(per_sample, "product_node_slots", lambda: {})
    elif fallback == "no-version-counter":
        monkeypatch.setattr(per_sample, "versions",
                            lambda w, b: internals.versions(w, b, versioned=False))
    else:
        monkeypatch.setattr(per_sample, "functorch_transforms_active", lambda: True)
    other = _economy_history()
    assert other.keys() == reference.keys() and "gns" in reference
    for name, values in reference.items():
        if name.startswith("time/") or name.endswith("seconds"):
            continue
        got = [v for _, v in other[name]]
        assert got == pytest.approx([v for _, v in values], rel=1e-9, abs=1e-12), name
