"""Probes that compute per-tensor families as vectors (``PackedProbe``): the monitor reads
each vector once (``tolist``) and records the numbers that ``measure`` returns one 0-d
tensor per metric, to the bit, under the same names and in the same order; a subclass that
overrides ``measure`` is measured through its own ``measure``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _probe_helpers import monitored_steps
from torch import nn

from trainlab.probes import build_probes
from trainlab.probes._probe import PackedProbe, Table, packs, unpacked
from trainlab.train import Monitor

SPEC = "grad-norm,weight-norm,rotation,update-ratio"


def _unpacking(probe: PackedProbe) -> PackedProbe:
    """The same probe, its class overriding ``measure`` (so the monitor calls that)."""
    cls = type(probe)
    sub = type(f"Plain{cls.__name__}", (cls,),
               {"measure": lambda self, ctx: unpacked(self.measure_packed(ctx))})
    plain = sub.__new__(sub)
    plain.__dict__.update(probe.__dict__)
    return plain


def _history(packed: bool, dtype: torch.dtype) -> tuple[dict, list[list[str]]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(7, 12), nn.ReLU(), nn.Linear(12, 3)).to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    probes = build_probes(SPEC, every=1)
    if not packed:
        probes = [_unpacking(p) for p in probes]
    assert all(packs(p) == packed for p in probes)
    order: list[list[str]] = []
    sink = type("Sink", (), {"write": lambda self, step, row: order.append(list(row)),
                             "close": lambda self: None})()
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, probes=probes, sinks=[sink])
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(10, 7, generator=g).to(dtype), torch.randint(0, 3, (10,), generator=g)
    monitored_steps(mon, model, opt, F.cross_entropy, x, y, steps=4)
    mon.finish()
    return mon.history, order


def test_packed_and_unpacked_measurements_record_the_same_bits_in_the_same_order():
    for dtype in (torch.float32, torch.float64):
        packed, packed_order = _history(True, dtype)
        plain, plain_order = _history(False, dtype)
        assert {"rotation/0.weight", "distance/2.bias", "update_ratio/2.weight",
                "grad_norm/0.bias", "weight_norm/2.weight"} <= set(packed)
        assert "rotation/0.bias" not in packed  # a bias has no angle
        assert packed_order == plain_order  # names, and their order, as measure gives them
        for name, values in plain.items():
            assert [v.hex() for _, v in packed[name]] == [v.hex() for _, v in values], name


def test_a_measure_set_on_the_instance_is_the_one_the_monitor_calls():
    probe = build_probes("grad-norm")[0]
    assert packs(probe)
    probe.measure = lambda ctx: {"grad_norm": 1.0}
    assert not packs(probe)


def test_unpacked_keeps_order_and_drops_unnamed_entries():
    out = unpacked({"a": 1.0, "b/*": Table(("b/x", None, "b/z"), torch.tensor([2.0, 3.0, 4.0])),
                    "c": torch.tensor(5.0)})
    assert list(out) == ["a", "b/x", "b/z", "c"]
    assert [float(v) for v in out.values()] == [1.0, 2.0, 4.0, 5.0]
