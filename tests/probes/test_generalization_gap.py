"""The generalization-gap formulas of Roberts (row 46) on a linear model with the square loss,
where everything is computable: the first-order prediction misses the measured change by
exactly the quadratic term, and the expectation over all training sets drawn from a finite
population is exactly lr * tr(Sigma) / N."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch
from _probe_helpers import assert_unchanged, snapshot
from torch import nn

from trainlab.analyses.generalization_gap import expected_gap_change, predicted_gap_change
from trainlab.probes import ProbeContext
from trainlab.probes.generalization_gap import GeneralizationGapChange


def mse(out, y):
    return (out.squeeze(-1) - y).pow(2).mean()


def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return x, x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3 * torch.randn(
        n, generator=g, dtype=torch.float64)


def grad_of(w, x, y):
    return 2 * x.T @ (x @ w - y) / len(x)


def loss_of(w, x, y):
    return (x @ w - y).pow(2).mean()


def test_prediction_misses_by_the_quadratic_term():
    (xtr, ytr), (xte, yte) = data(8, 0), data(50, 1)
    w = torch.tensor([0.2, 0.1, -0.3], dtype=torch.float64)
    lr = 0.05
    g_tr, g_te = grad_of(w, xtr, ytr), grad_of(w, xte, yte)
    dw = -lr * g_tr
    gap = lambda v: loss_of(v, xte, yte) - loss_of(v, xtr, ytr)  # noqa: E731
    measured = gap(w + dw) - gap(w)
    pred = predicted_gap_change(g_tr, g_te, dw)
    assert pred.item() == pytest.approx(lr * (g_tr @ g_tr - g_te @ g_tr).item(), rel=1e-12)
    h_tr, h_te = 2 * xtr.T @ xtr / len(xtr), 2 * xte.T @ xte / len(xte)
    torch.testing.assert_close(measured - pred, 0.5 * dw @ (h_te - h_tr) @ dw)


def test_expectation_over_all_training_sets_is_lr_trace_cov_over_n():
    """Population of M examples (the test set), training sets of N draws with replacement:
    enumerate all M^N of them."""
    x, y = data(5, 2)
    w = torch.tensor([0.4, -0.2, 0.1], dtype=torch.float64)
    per_ex = torch.stack([grad_of(w, x[i:i + 1], y[i:i + 1]) for i in range(len(x))])
    mu = per_ex.mean(0)
    cov = (per_ex - mu).T @ (per_ex - mu) / len(x)  # population covariance
    lr, n = 0.1, 3
    preds = []
    for idx in itertools.product(range(len(x)), repeat=n):
        g_tr = grad_of(w, x[list(idx)], y[list(idx)])
        preds.append(predicted_gap_change(g_tr, mu, -lr * g_tr))
    mean = torch.stack(preds).mean()
    torch.testing.assert_close(mean, torch.as_tensor(expected_gap_change(lr, torch.trace(cov), n),
                                                     dtype=torch.float64))


def gap16(v, xtr, ytr, xte, yte):
    return loss_of(v, xte[:16], yte[:16]) - loss_of(v, xtr[:16], ytr[:16])


def test_probe_against_direct_computation():
    (xtr, ytr), (xte, yte) = data(20, 3), data(30, 4)
    task = SimpleNamespace(x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    torch.manual_seed(0)
    model = nn.Linear(3, 1, bias=False).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    probe = GeneralizationGapChange(max_examples=16)
    prev, lr = None, 0.05
    for step in range(3):
        idx = torch.arange(step * 4, step * 4 + 8) % 20
        opt.zero_grad()
        loss = mse(model(xtr[idx]), ytr[idx])
        loss.backward()
        ctx = ProbeContext(step=step, model=model, loss_fn=mse, batch=(xtr[idx], ytr[idx]),
                           loss=loss.detach(), lr=lr, prev_params=prev, task=task)
        snap = snapshot(model)
        out = probe.measure(ctx)
        assert_unchanged(model, snap)
        if prev is None:
            assert out == {}
        else:
            w0, w1 = prev["weight"].reshape(-1), model.weight.detach().reshape(-1)
            a, b, c, d = xtr[:16], ytr[:16], xte[:16], yte[:16]
            g1, g0 = gap16(w1, xtr, ytr, xte, yte), gap16(w0, xtr, ytr, xte, yte)
            torch.testing.assert_close(out["gen_gap"], g1)
            torch.testing.assert_close(out["gen_gap/measured_change"], g1 - g0)
            torch.testing.assert_close(out["gen_gap/predicted_change"],
                                       (grad_of(w0, c, d) - grad_of(w0, a, b)) @ (w1 - w0))
            per_ex = torch.stack([grad_of(w0, a[i:i + 1], b[i:i + 1]) for i in range(16)])
            tr_cov = per_ex.var(0, unbiased=True).sum()
            torch.testing.assert_close(out["gen_gap/trace_cov"], tr_cov)
            torch.testing.assert_close(out["gen_gap/expected_change"], lr * tr_cov / 20)
        prev = {n: p.detach().clone() for n, p in model.named_parameters()}
        opt.step()
