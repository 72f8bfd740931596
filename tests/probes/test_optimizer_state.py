"""Optimizer-state probes: Adam's effective step sizes reproduce Adam's own update; the
momentum cosine against a direct computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _probe_helpers import assert_unchanged, batch, context, mlp, snapshot

from trainlab.probes.adam_step_size import AdamStepSize, adam_step_sizes
from trainlab.probes.momentum_alignment import MomentumAlignment


def test_effective_step_sizes_reproduce_adam_update():
    """theta_{t+1} - theta_t = -eta_eff * m_hat, with eta_eff from the probe's formula."""
    model = mlp()
    x, y = batch()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9), eps=1e-6)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        before = torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])
        opt.step()
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    m_hat = torch.cat([opt.state[p]["exp_avg"].reshape(-1) for p in model.parameters()]) / (
        1 - 0.8 ** 3)
    torch.testing.assert_close(after - before, -adam_step_sizes(opt) * m_hat)


def test_adam_step_probe_quantiles():
    model = mlp()
    x, y = batch()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    ctx = context(model, x, y, optimizer=opt)
    snap = snapshot(model)
    state_before = {k: v.clone() for k, v in opt.state[model[0].weight].items()}
    out = AdamStepSize(quantiles=(0.1, 0.5)).measure(ctx)
    assert_unchanged(model, snap)
    for k, v in opt.state[model[0].weight].items():
        assert torch.equal(v, state_before[k])
    eta = adam_step_sizes(opt).numpy()
    import numpy as np

    assert float(out["adam_step/q10"]) == pytest.approx(np.quantile(eta, 0.1), rel=1e-12)
    assert float(out["adam_step/q50"]) == pytest.approx(np.median(eta), rel=1e-12)
    assert float(out["adam_step/max"]) == pytest.approx(eta.max())
    sgd_ctx = context(mlp(), x, y)
    assert AdamStepSize().measure(sgd_ctx) == {}


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_momentum_cosine(opt_name):
    model = mlp()
    x, y = batch()
    opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if opt_name == "sgd"
           else torch.optim.Adam(model.parameters(), lr=0.01))
    ctx = context(model, x, y, optimizer=opt)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()  # a new gradient the buffer has not seen
    snap = snapshot(model)
    out = MomentumAlignment().measure(ctx)
    assert_unchanged(model, snap)
    key = "momentum_buffer" if opt_name == "sgd" else "exp_avg"
    m = torch.cat([opt.state[p][key].reshape(-1) for p in model.parameters()])
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(out["momentum_cos"], F.cosine_similarity(m, g, dim=0))
    w = model[0].weight
    torch.testing.assert_close(out["momentum_cos/0.weight"], F.cosine_similarity(
        opt.state[w][key].reshape(-1), w.grad.reshape(-1), dim=0))
