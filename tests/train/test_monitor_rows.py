"""The norm probes hand the fused table's rows to the monitor as :class:`Table` entries over
the whole ``(8, k)`` table (read by one ``tolist()``) and the totals as floats (one
``tolist()`` a step), and :class:`ParamNorms` makes a row's view only when it is read: the
monitor records the bits of the unpacked path (one 0-d tensor per metric, read by
``item()``), every row read equals the table's row and every total torch's norm of it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.probes import build_probes, fused
from trainlab.probes._probe import Table, unpacked
from trainlab.probes.norms import _FIELDS, ParamNorms, param_norms
from trainlab.train import Monitor

pytestmark = pytest.mark.skipif(not fused.available() or fused.library() is None,
                                reason="no C compiler: the fused path is not built")

SPEC = "grad-norm,rotation,update-ratio,weight-norm"


def history(dtype: torch.dtype, every: int, packed: bool) -> dict[str, list[tuple[int, str]]]:
    """The history (values as ``float.hex``) of a monitor whose probes are read packed
    (Tables over the fused table) or, with ``packed=False``, through their unpacking
    ``measure`` (each metric a 0-d tensor)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(7, 19), nn.Tanh(), nn.Linear(19, 3)).to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    probes = build_probes(SPEC, every=every)
    if not packed:
        for probe in probes:
            probe.measure = probe.measure  # set on the instance: the monitor unpacks
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, probes=probes, seed=1,
                  total_steps=9)
    g = torch.Generator().manual_seed(2)
    batches = [(torch.randn(16, 7, generator=g, dtype=dtype),
                torch.randint(0, 3, (16,), generator=g)) for _ in range(10)]
    for x, y in batches:
        opt.zero_grad()
        (loss := F.cross_entropy(model(x), y)).backward()
        mon.step(loss, (x, y))
        opt.step()
    mon.finish()
    return {n: [(s, float(v).hex()) for s, v in h] for n, h in mon.history.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("every", [1, 3])
def test_rows_of_the_table_record_the_bits_of_the_unpacked_path(dtype, every):
    packed, plain = history(dtype, every, True), history(dtype, every, False)
    assert {n for n in packed if "/" in n} == {n for n in plain if "/" in n}
    assert any(n.startswith("rotation/") for n in packed)
    assert list(packed) == list(plain)  # the same names in the same order
    for name, values in plain.items():
        assert packed[name] == values, name


class Ctx:
    """The part of a probe context :func:`param_norms` reads."""

    def __init__(self, params, init, prev):
        self.step, self.cache, self.run_cache = 1, {}, {}
        self.init_params, self.prev_params = init, prev
        self._params = params

    def params(self):
        return self._params

    def grads(self):
        return {n: p.grad for n, p in self._params.items() if p.grad is not None}

    def cached(self, key, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


@pytest.mark.parametrize("known", ["all", "no prev", "no grads"])
def test_param_norms_rows_made_when_read_equal_the_table(known):
    g = torch.Generator().manual_seed(3)
    params = {f"p{i}": torch.randn(s, generator=g) for i, s in enumerate([(4, 5), (5,), (3, 4)])}
    for p in params.values():
        p.grad = None if known == "no grads" else torch.randn(p.shape, generator=g)
    init = {n: torch.randn(p.shape, generator=g) for n, p in params.items()}
    prev = None if known == "no prev" else {n: torch.randn(p.shape, generator=g)
                                            for n, p in params.items()}
    out = param_norms(Ctx(params, init, prev))
    assert out.table is not None and out.table.shape == (8, 3)
    present = {"grad": known != "no grads", "prev_dist": known != "no prev",
               "prev": known != "no prev", "ratio": known != "no prev"}
    for row, field in enumerate(_FIELDS):
        assert out.has(field) == present.get(field, True), field
        value = getattr(out, field)
        if present.get(field, True):
            assert torch.equal(value, out.table[row]) and getattr(out, field) is value
            # the total as a float: the bits of torch's norm of the row
            assert out.total(field).hex() == torch.linalg.vector_norm(value).item().hex()
        else:
            assert value is None
    ref = ParamNorms(out.names, out.weight)  # the eager constructor: fields as given
    assert ref.table is None and ref.grad is None and not ref.has("grad")
    with pytest.raises(AttributeError, match="read-only"):
        out.weight = out.table[0]
    with pytest.raises(AttributeError):
        _ = out.not_a_field


def test_table_with_a_row_unpacks_and_records_as_its_row():
    table = torch.tensor([[1.5, 2.0, -3.25], [0.1, 1e-30, float("nan")]], dtype=torch.float64)
    names = ("a", None, "c")
    assert Table(names, table, 1).vector() is not table
    flat = unpacked({"x": Table(names, table, 1)})
    assert [(n, float(v).hex()) for n, v in flat.items()] == [
        ("a", (0.1).hex()), ("c", float("nan").hex())]
    mon = Monitor(nn.Linear(2, 1), loss_fn=F.mse_loss, probes=[])
    ints = torch.tensor([[1, 2], [3, 4]])
    mon._record(0, {"r1": Table(("a", None, "c"), table, 1),
                    "r0": Table(("d", "e", None), table, 0), "i": Table(("f", "g"), ints, 1)})
    assert {n: h[0][1] for n, h in mon.history.items()} == {
        "a": 0.1, "c": pytest.approx(float("nan"), nan_ok=True), "d": 1.5, "e": 2.0,
        "f": 3.0, "g": 4.0}
    assert all(type(h[0][1]) is float for h in mon.history.values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_an_earlier_table_as_known_prev_norms_reads_its_weight_row(dtype):
    g = torch.Generator().manual_seed(4)
    w = [torch.randn(s, generator=g, dtype=dtype) for s in [(6, 3), (3,), (2, 6)]]
    prev = [torch.randn(t.shape, generator=g, dtype=dtype) for t in w]
    before = fused.tensor_norms(prev, None, None, None, ("weight",))  # "the step before"
    want = ("weight", "prev_dist", "update_ratio")
    by_row = fused.tensor_norms(w, None, None, prev, want, prev_norms=before[1].clone())
    by_table = fused.tensor_norms(w, None, None, prev, want, prev_norms=before)
    computed = fused.tensor_norms(w, None, None, prev, (*want, "prev"))
    assert by_table is not None and torch.equal(by_table, by_row)
    assert torch.equal(by_table[[1, 4, 5, 7]], computed[[1, 4, 5, 7]])
    for bad in (before[:, :2], before.t().contiguous().t(), before.to(torch.float16),
                torch.zeros(7, 3, dtype=dtype)):  # not a table of this plan: refused
        assert fused.tensor_norms(w, None, None, prev, want, prev_norms=bad) is None


def test_the_eager_path_after_a_fused_step_reads_the_kept_table_s_weight_row():
    """The fused path keeps its whole table for the next step's previous norms; a step that
    falls back to the eager path takes that table's weight row (within the fused path's
    tolerance of a run on the eager path throughout)."""
    runs = []
    for switch in (0, 3):
        fused.set_enabled(True)  # off from step `switch` on
        try:
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2)).double()
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                          probes=build_probes("update-ratio", every=1))
            g = torch.Generator().manual_seed(1)
            for step in range(6):
                if step == switch:
                    fused.set_enabled(False)
                x = torch.randn(8, 5, generator=g, dtype=torch.float64)
                y = torch.randint(0, 2, (8,), generator=g)
                opt.zero_grad()
                (loss := F.cross_entropy(model(x), y)).backward()
                mon.step(loss, (x, y))
                opt.step()
            runs.append(mon.history)
        finally:
            fused.set_enabled(True)
    eager, switched = runs
    assert list(eager) == list(switched)
    for name, values in eager.items():
        assert [s for s, _ in switched[name]] == [s for s, _ in values]
        assert [v for _, v in switched[name]] == pytest.approx(
            [v for _, v in values], rel=fused.RTOL[torch.float64], abs=1e-300), name
