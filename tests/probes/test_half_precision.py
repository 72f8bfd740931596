"""Probes on a half-precision (bfloat16/float16) model measure in float32 where CPU linear
algebra has no half kernels, instead of skipping with NotImplementedError."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.curvature import hutchpp_trace
from trainlab.probes.effective_rank import effective_rank
from trainlab.train import Monitor

HALF = (torch.bfloat16, torch.float16)


@pytest.mark.parametrize("dtype", HALF)
def test_effective_rank_of_a_half_matrix_is_the_float32_value_of_the_same_entries(dtype):
    w = torch.randn(12, 7, generator=torch.Generator().manual_seed(0)).to(dtype)
    assert effective_rank(w).dtype == torch.float32
    assert float(effective_rank(w)) == pytest.approx(float(effective_rank(w.double())),
                                                     rel=1e-5)


@pytest.mark.parametrize("dtype", HALF)
def test_hutchpp_on_a_half_operator_is_near_the_exact_trace(dtype):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(20, 20, generator=g)
    spd = (a @ a.T / 20 + torch.eye(20))
    est = hutchpp_trace(spd.to(dtype), num_matvecs=60, generator=g)
    # half-precision products: a few parts in a hundred (bf16 keeps 8 bits of mantissa)
    assert est.value == pytest.approx(float(spd.trace()), rel=0.05)


@pytest.mark.parametrize("dtype", HALF)
def test_full_preset_on_a_half_model_skips_no_probe_for_a_missing_half_kernel(dtype, caplog):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3)).to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(0)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, probes="full", seed=0)
        for _ in range(2):
            x = torch.randn(16, 10, generator=g).to(dtype)
            y = torch.randint(0, 3, (16,), generator=g)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            mon.step(loss, (x, y))
            opt.step()
        mon.finish()
    text = caplog.text
    assert "not implemented for" not in text, text
    for probe in ("effective-rank", "weight-spectrum", "hessian-spectrum"):
        assert f"probe '{probe}'" not in text, text
