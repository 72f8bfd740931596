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
    query = internals.transforms_query(None)  # what a capture calls without the query
    assert query() is True
    assert internals.transforms_query(lambda: False)() is False


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
    assert internals.versions_counted()
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        assert internals.versions_counted(versioned=False) is False
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
        monkeypatch.setattr(per_sample, "versions_counted",
                            lambda: internals.versions_counted(versioned=False))
    else:
        monkeypatch.setattr(per_sample, "transforms_query",
                            lambda: internals.transforms_query(None))
    other = _economy_history()
    assert other.keys() == reference.keys() and "gns" in reference
    for name, values in reference.items():
        if name.startswith("time/") or name.endswith("seconds"):
            continue
        got = [v for _, v in other[name]]
        assert got == pytest.approx([v for _, v in values], rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize("fallback", [None, "no-node-layouts", "no-functorch-query",
                                      "no-version-counter"])
def test_what_a_capture_records_on_each_path(monkeypatch, fallback):
    """With every fact verified a record carries the layer's own gradients (those of p.grad);
    without the node layouts or the version counters it comes without them; without the
    functorch query nothing is recorded."""
    from _probe_helpers import captured_records

    import trainlab.probes.per_sample as per_sample

    if fallback == "no-node-layouts":
        monkeypatch.setattr(per_sample, "product_node_slots", lambda: {})
    elif fallback == "no-version-counter":
        monkeypatch.setattr(per_sample, "versions_counted",
                            lambda: internals.versions_counted(versioned=False))
    elif fallback == "no-functorch-query":
        monkeypatch.setattr(per_sample, "transforms_query",
                            lambda: internals.transforms_query(None))
    g = torch.Generator().manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3, bias=False))
    x, y = torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)
    records = captured_records(model, x, y)
    if fallback == "no-functorch-query":
        assert records == {}
        return
    assert set(records) == {model[0], model[2]}
    for layer in (model[0], model[2]):
        rec = records[layer]
        if fallback is None:
            assert torch.equal(rec.weight, layer.weight.grad)
            assert rec.bias is None if layer.bias is None else torch.equal(rec.bias,
                                                                          layer.bias.grad)
        else:
            assert rec.weight is None and rec.bias is None
