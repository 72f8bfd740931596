"""The retained-graph memory budget of HessianOperator: over it, fresh products (same bits),
one warning, the reason recorded; under it, graphs kept as before."""

import logging
import weakref

import pytest
import torch
from torch import nn

from trainlab.curvature import HessianOperator
from trainlab.curvature.training_hessian import training_hessian
from trainlab.errors import ConfigError


def _problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 3)).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    return model, nn.CrossEntropyLoss(), x, y


def _op(model, loss, data, budget, **kw):
    return HessianOperator(model, loss, data, method="double-backward", retain_graph=True,
                           graph_budget_mb=budget, **kw)


def test_over_budget_products_are_fresh_identical_and_warned_once(caplog):
    model, loss, x, y = _problem()
    data = [(x[:25], y[:25]), (x[25:], y[25:])]
    kept, cache = _op(model, loss, data, None), {}
    g = torch.Generator().manual_seed(2)
    vs = [torch.randn(kept.dim, generator=g, dtype=torch.float64) for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        for _ in range(2):  # two operators of one run: one warning
            small = _op(model, loss, data, 1e-3, run_cache=cache)
            for v in vs:
                assert torch.equal(small.matvec(v), kept.matvec(v))
            assert small._graphs == {} and small.retained_mb == 0.0
            assert "graph_budget_mb=0.001" in small.retain_fallback
    assert len(kept._graphs) == 2 and kept.retain_fallback is None
    assert cache["hessian_graph_budget_fallback"] == small.retain_fallback
    warned = [r for r in caplog.records if "graph_budget_mb" in r.getMessage()]
    assert len(warned) == 1
    with torch.no_grad():  # in-place write: both rebuild, still the same bits
        model[0].weight.mul_(1.5)
    assert torch.equal(small.matvec(vs[0]), kept.matvec(vs[0]))


def test_fallback_frees_the_graph_and_the_budget_counts_all_batches():
    model, loss, x, y = _problem()
    one = _op(model, loss, (x[:20], y[:20]), 1e6)
    v = torch.zeros(one.dim, dtype=torch.float64)
    one.matvec(v)
    mb = one.retained_mb
    # at least the gradients (dim doubles) and the two hidden activations (20 x 32 doubles)
    assert mb * 2**20 >= 8 * (one.dim + 2 * 20 * 32)
    both = _op(model, loss, [(x[:20], y[:20]), (x[20:], y[20:])], 1.5 * mb)
    both.matvec(v)  # the first batch fits, both do not: every retained graph is freed
    assert both._graphs == {} and both.retain_fallback is not None
    fresh = _op(model, loss, (x[:20], y[:20]), 0.5 * mb)
    fresh.matvec(v)
    ref = weakref.ref(fresh._gradient_graph(fresh.batches[0], 0)[1][0])
    assert ref() is None  # nothing keeps the create_graph gradient alive
    fits = _op(model, loss, (x[:20], y[:20]), 1.01 * mb)
    fits.matvec(v)
    assert len(fits._graphs) == 1 and fits.retain_fallback is None


def test_training_hessian_passes_the_budget_and_rejects_a_negative_one(caplog):
    model, loss, x, y = _problem()
    cache: dict = {}
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        op = training_hessian(model, loss, (x, y), run_cache=cache, graph_budget_mb=1e-3)
        op2 = training_hessian(model, loss, (x, y), run_cache=cache, graph_budget_mb=1e-3)
        v = torch.ones(op.dim, dtype=torch.float64)
        assert torch.equal(op2.matvec(v), training_hessian(model, loss, (x, y)).matvec(v))
    assert op.retain_fallback is not None and op2._graphs == {}
    assert sum("graph_budget_mb" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(ConfigError, match="graph_budget_mb"):
        _op(model, loss, (x, y), -1.0)
