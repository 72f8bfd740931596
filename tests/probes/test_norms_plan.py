"""The kept plan of the fused norm pass (``fused.NormsPlan``): reused while its tensors stay
the same objects at the same addresses, rebuilt or refused when they change, never reading
a stale pointer; the rows formed from the norms in C (rotation, update ratio) and the row
totals give the bits of the probes' torch formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.probes import Probe, ProbeContext, build_probes, fused
from trainlab.probes.norms import param_norms, ratio_total
from trainlab.probes.rotation import _rotation_names
from trainlab.train import Monitor

pytestmark = pytest.mark.skipif(not fused.available() or fused.library() is None,
                                reason="no C compiler: the fused path is not built")

SHAPES = [(33, 9), (33,), (70, 33), (70,), (4, 70), (4,)]
ALL = ("grad", "weight", "init_dist", "init", "prev_dist", "prev", "rotation", "update_ratio")


def tensors(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]
    grads = [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]
    init = [t + 0.1 * torch.randn(t.shape, generator=g, dtype=dtype) for t in w]
    prev = [t + 1e-3 * torch.randn(t.shape, generator=g, dtype=dtype) for t in w]
    copy = [torch.empty_like(t) for t in w]
    return w, grads, init, prev, copy


def fresh(w, grads, init, prev, want=ALL):
    """The same call without a kept plan (what the plan must equal, to the bit)."""
    return fused.tensor_norms(w, grads, init, prev, want)


def test_a_plan_is_kept_and_gives_the_bits_of_a_fresh_call():
    w, grads, init, prev, copy = tensors()
    plans: list = []
    first = fused.tensor_norms(w, grads, init, prev, ALL, copy, plans)
    assert len(plans) == 1
    kept = plans[0]
    for seed in (1, 2):  # new gradients (new objects) and weights changed in place
        grads = tensors(seed=seed)[1]
        for t in w:
            t.mul_(1.01)
        got = fused.tensor_norms(w, grads, init, prev, ALL, copy, plans)
        assert plans == [kept]  # reused: the same plan object
        assert torch.equal(got, fresh(w, grads, init, prev))
        assert all(torch.equal(c, t) for c, t in zip(copy, w))  # the copy written too
    assert not torch.equal(got, first)


@pytest.mark.parametrize("change", ["replaced", "data", "appended", "removed", "prev"])
def test_a_changed_tensor_gets_a_new_plan_and_fresh_numbers(change):
    w, grads, init, prev, _ = tensors()
    plans: list = []
    fused.tensor_norms(w, grads, init, prev, ALL, None, plans)
    old = plans[0]
    extra = torch.randn(5, generator=torch.Generator().manual_seed(9))
    if change == "replaced":  # a parameter replaced by another tensor
        w[0] = w[0] * 2.0
    elif change == "data":  # the same object over new memory (its old memory may be freed)
        w[2].data = torch.randn(70, 33)
    elif change == "appended":
        w, grads, init, prev = w + [extra], grads + [extra * 2], init + [extra], prev + [extra]
    elif change == "removed":
        w, grads, init, prev = w[:-1], grads[:-1], init[:-1], prev[:-1]
    else:  # the other snapshot buffer (as a monitor alternates two)
        prev = [t.clone() for t in prev]
    got = fused.tensor_norms(w, grads, init, prev, ALL, None, plans)
    assert plans[0] is not old and len(plans) <= fused.PLANS_KEPT
    assert torch.equal(got, fresh(w, grads, init, prev))
    if change == "prev":  # same weights: both plans kept, and both reused after
        assert plans[1] is old
    else:  # other weights: the old plan (and its references) dropped
        assert old not in plans


def test_tensors_that_stop_fitting_are_refused_not_read():
    """A dtype move of a kept tensor (``.data`` swapped), a device move (a new tensor on
    another device), a gradient that became non-contiguous, of another size, or missing,
    and known norms of another dtype: nothing is computed (None, the caller's eager path),
    and the plan is rebuilt, not read, once they fit again."""
    w, grads, init, prev, _ = tensors()
    plans: list = []
    assert fused.tensor_norms(w, grads, init, prev, ALL, None, plans) is not None
    bad_grads = [grads[0].t().contiguous().t(), *grads[1:]]
    assert not bad_grads[0].is_contiguous()
    assert fused.tensor_norms(w, bad_grads, init, prev, ALL, None, plans) is None
    assert fused.tensor_norms(w, grads[:-1], init, prev, ALL, None, plans) is None
    assert fused.tensor_norms(w, [grads[1], *grads[1:]], init, prev, ALL, None,
                              plans) is None  # a gradient of another size
    meta = [torch.empty(s, device="meta") for s in SHAPES]
    assert fused.tensor_norms(meta, None, None, None, ("weight",), None, plans) is None
    known = torch.ones(len(w), dtype=torch.float64)
    assert fused.tensor_norms(w, grads, init, prev, ("weight", "init_dist"), None,
                              plans, init_norms=known) is None
    w[1].data = w[1].data.double()  # the same object, now float64
    assert fused.tensor_norms(w, grads, init, prev, ALL, None, plans) is None
    w[1].data = w[1].data.float()
    got = fused.tensor_norms(w, grads, init, prev, ALL, None, plans)
    assert torch.equal(got, fresh(w, grads, init, prev))


def test_a_family_without_its_tensors_is_refused():
    w, grads, init, prev, _ = tensors()
    with pytest.raises(ValueError, match="cannot give"):
        fused.tensor_norms(w, grads, [], prev, ("weight", "init_dist", "rotation"))
    with pytest.raises(ValueError, match="cannot give"):
        fused.tensor_norms(w, grads, init, [], ("prev_dist", "update_ratio"))
    with pytest.raises(ValueError, match="cannot give"):  # computed and given at once
        fused.tensor_norms(w, grads, init, prev, ("weight", "init"), init_norms=w[0][0])


EDGES = [0.0, 1e-30, 1e-38, 1e-45, 1e-20, 0.5, 1.0, 3.0, 1e20, 3e38, math.inf, math.nan]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rotation_and_ratio_rows_are_the_bits_of_the_torch_formulas(dtype):
    """Rows 6 and 7 formed in C from the norm rows (with known init / prev norms copied in,
    which lets every edge value be planted) equal the probes' torch formulas to the bit:
    random values over 60 decades, zeros, tiny, subnormal, huge, infinite and NaN."""
    g = torch.Generator().manual_seed(3)
    k = 400
    w = [torch.randn(3, generator=g, dtype=dtype) * 10.0 ** float(e)
         for e in torch.randint(-12, 12, (k,), generator=g)]
    w[:len(EDGES)] = [torch.full((3,), v, dtype=dtype) for v in EDGES]  # inf, nan norms too
    init = [t * 0.9 for t in w]
    prev = [t + 1e-3 for t in w]
    w0 = (torch.rand(k, generator=g, dtype=torch.float64) * 10.0 ** torch.randint(
        -40, 40, (k,), generator=g).double()).to(dtype)
    wp = w0.flip(0).clone()
    w0[:len(EDGES)] = torch.tensor(EDGES, dtype=dtype)
    wp[-len(EDGES):] = torch.tensor(EDGES, dtype=dtype)
    table = fused.tensor_norms(w, None, init, prev,
                               ("weight", "init_dist", "prev_dist", "rotation", "update_ratio"),
                               init_norms=w0, prev_norms=wp)
    d, ww, dp = table[2], table[1], table[4]
    e = ww - w0
    rot = (d - e).mul_(d + e).div_((ww + ww).mul_(w0).clamp_min_(1e-30))
    ratio = dp.div(wp.clamp_min(1e-30))
    for got, want in ((table[3], w0), (table[5], wp), (table[6], rot), (table[7], ratio)):
        same = (got == want) | (got.isnan() & want.isnan())
        assert bool(same.all()), (got[~same], want[~same])
    assert bool(table[6].isnan().any()) and bool(table[7].isnan().any())  # edges reached


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_row_totals_in_one_call_are_the_bits_of_one_call_per_row(dtype):
    """``ParamNorms.totals``: ``vector_norm(table, dim=1)`` gives, row by row, the bits of
    ``vector_norm(row)`` (what the probes computed before), for tables of 1 to 700 tensors
    and values over 16 decades."""
    g = torch.Generator().manual_seed(4)
    for k in [*range(1, 40), 63, 64, 65, 127, 128, 129, 255, 256, 257, 700]:
        table = (torch.rand(8, k, generator=g, dtype=torch.float64)
                 * 10.0 ** torch.randint(-8, 8, (8, k), generator=g).double()).to(dtype)
        rows = torch.linalg.vector_norm(table, dim=1)
        for r in range(8):
            assert torch.equal(rows[r], torch.linalg.vector_norm(table[r])), (k, r)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ratio_total_is_the_bits_of_the_torch_quotient(dtype):
    """``update_ratio`` from the totals as Python floats equals torch's 0-d
    ``d / clamp_min(w, 1e-30)``: random pairs over 80 decades (float32 quotients below
    its normal range and beyond its largest value included), and the edge values."""
    g = torch.Generator().manual_seed(5)
    n = 4000
    d = (torch.rand(n, generator=g, dtype=torch.float64)
         * 10.0 ** torch.randint(-44, 38, (n,), generator=g).double()).to(dtype)
    w = (torch.rand(n, generator=g, dtype=torch.float64)
         * 10.0 ** torch.randint(-44, 38, (n,), generator=g).double()).to(dtype)
    edges = torch.tensor(EDGES, dtype=dtype)
    d = torch.cat([d, edges.repeat_interleave(len(EDGES))])
    w = torch.cat([w, edges.repeat(len(EDGES))])
    for a, b in zip(d.unbind(), w.unbind()):
        want = float(a / b.clamp_min(1e-30))
        got = ratio_total(float(a), float(b), dtype)
        assert got == want or (math.isnan(got) and math.isnan(want)), (float(a), float(b))


def test_a_swapped_tensor_cannot_come_back_at_its_old_address():
    """The plan keeps each tensor's storage: after ``.data`` is swapped twice, the second
    new memory cannot be the first's address (which the plan would take for the old
    tensor), and the plan is not used."""
    w, grads, init, prev, _ = tensors()
    plans: list = []
    fused.tensor_norms(w, grads, init, prev, ALL, None, plans)
    kept = w[0].data_ptr()
    for _ in range(20):  # without the kept storage the address came back 9 times in 20
        w[0].data = torch.empty(0)  # the old memory is released but for the plan
        w[0].data = torch.empty(SHAPES[0])
        assert w[0].data_ptr() != kept
    w[0].normal_(generator=torch.Generator().manual_seed(1))
    assert not plans[0].matches((w, init, prev, ()))
    assert torch.equal(fused.tensor_norms(w, grads, init, prev, ALL, None, plans),
                       fresh(w, grads, init, prev))


def test_kept_results_never_see_a_later_calls_numbers():
    """Each call's table is new and never written again: tables (and rows and views of them)
    kept over more calls than a block of tables holds keep their numbers, every table is
    a distinct ``(8, k)`` contiguous tensor of the weights' dtype, and the blocks are the
    stated size."""
    w, grads, init, prev, _ = tensors()
    copy = [t.clone() for t in prev]
    plans: list = []
    kept, rows, copies = [], [], []
    calls = 2 * fused.TABLES_PER_BLOCK + 3
    for step in range(calls):
        grads = tensors(seed=step + 1)[1]
        for t in w:
            t.mul_(1.001)
        # the two snapshot buffers alternate as a monitor's do (two plans of one set)
        before, after = (prev, copy) if step % 2 else (copy, prev)
        table = fused.tensor_norms(w, grads, init, before, ALL, after, plans)
        assert table.shape == (8, len(w)) and table.is_contiguous() and table.dtype is w[0].dtype
        kept.append(table)
        rows.append(table[0])  # a view kept without its table
        copies.append(table.clone())
    assert len({t.data_ptr() for t in kept}) == calls
    for table, row, copy_ in zip(kept, rows, copies):
        assert torch.equal(table, copy_) and torch.equal(row, copy_[0])
    tables = plans[0].tables
    assert tables is plans[1].tables  # shared by the plans of the same weights
    assert tables.block == min(fused.TABLES_PER_BLOCK,
                               fused.TABLE_BLOCK_BYTES // (8 * len(w) * 4))


def test_known_norms_checked_in_full_when_their_table_changed():
    """The previous table passed back as known norms is taken by identity and address; a
    ``.data`` swapped onto it is noticed: another dtype refused (None), another tensor of
    the right layout read at its new address (the bits of a call given that tensor)."""
    w, grads, init, prev, _ = tensors()
    plans: list = []
    want = ("grad", "weight", "prev_dist", "update_ratio")
    before = fused.tensor_norms(w, grads, None, prev, ("weight",), None, plans)
    got = fused.tensor_norms(w, grads, None, prev, want, None, plans, prev_norms=before)
    assert torch.equal(got[5], before[1])  # its weight row, copied
    before = fused.tensor_norms(w, grads, None, prev, ("weight",), None, plans)
    before.data = before.data.double()
    assert fused.tensor_norms(w, grads, None, prev, want, None, plans,
                              prev_norms=before) is None
    other = torch.rand(8, len(w), generator=torch.Generator().manual_seed(7))
    before = fused.tensor_norms(w, grads, None, prev, ("weight",), None, plans)
    before.data = other
    got = fused.tensor_norms(w, grads, None, prev, want, None, plans, prev_norms=before)
    assert torch.equal(got, fused.tensor_norms(w, grads, None, prev, want,
                                               prev_norms=other.clone()))
    assert torch.equal(got[5], other[1])


def test_a_probe_keeping_param_norms_across_steps_keeps_its_numbers():
    """Inside a monitor (economy at every step, the snapshot written by the pass) a probe
    that keeps each step's ``ParamNorms``, a row of it and its totals sees, after more steps
    than a block of tables holds, the numbers of the step it kept them at."""
    seen = []

    class Keeper(Probe):
        name = "keeper"

        def measure(self, ctx):
            norms = param_norms(ctx)
            grad = norms.grad  # a view of the step's table
            seen.append((norms, grad, norms.table.clone(), norms.totals.clone()))
            return {}  # records nothing: it only keeps what it was handed

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=[*build_probes("economy"), Keeper()], seed=1)
    g = torch.Generator().manual_seed(2)
    for _ in range(fused.TABLES_PER_BLOCK + 6):
        x, y = torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad()
        (loss := F.cross_entropy(model(x), y)).backward()
        mon.step(loss, (x, y))
        opt.step()
    mon.finish()
    assert len({norms.table.data_ptr() for norms, *_ in seen}) == len(seen)
    for norms, grad, table, totals in seen:
        assert torch.equal(norms.table, table) and torch.equal(norms.totals, totals)
        assert torch.equal(grad, table[0])


def test_rotation_names_kept_only_while_the_parameters_are_the_same_tensors():
    """``rotation``'s names (only tensors of at least 2 dims get one) are kept in the run's
    cache for the same tensors under the same names: a tensor replaced by one of fewer
    dims, or a renamed one, gets its names anew."""
    cache: dict = {}

    def names_of(params):
        ctx = ProbeContext(step=0, model=nn.Linear(1, 1), loss_fn=F.mse_loss, batch=None,
                           cache={"params": params}, run_cache=cache)
        return _rotation_names(ctx, tuple(params))

    w, b = torch.zeros(3, 2), torch.zeros(3)
    params = {"w": w, "b": b}
    assert names_of(params) == ("rotation/w", None)
    kept = cache["rotation_names"]
    assert names_of(dict(params)) == ("rotation/w", None) and cache["rotation_names"] is kept
    assert names_of({"w": torch.zeros(6), "b": b}) == (None, None)
    assert names_of({"v": w, "b": b}) == ("rotation/v", None)
    assert names_of({"w": w, "b": b, "c": torch.zeros(2, 2)}) == ("rotation/w", None,
                                                                  "rotation/c")
