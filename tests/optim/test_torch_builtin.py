"""torch's Adam/AdamW under trainlab's names: ``fused=None`` takes torch's fused kernel only
where the running torch has it for the parameters' device (CPU: torch >= 2.4), else the
foreach path with one warning; both give torch's Adam update."""

from __future__ import annotations

import logging

import pytest
import torch
from packaging.version import Version

import trainlab.log
import trainlab.optim.torch_builtin as builtin
from trainlab.optim import build_optimizer


def test_cpu_kernel_check_matches_torch_history():
    """The fused CPU Adam kernels came with torch 2.4: the one-tensor check must say so."""
    has_cpu_kernels = Version(torch.__version__.split("+")[0]) >= Version("2.4")
    assert builtin._fuses_on("cpu") is has_cpu_kernels


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_without_cpu_kernels_foreach_path_same_update_one_warning(name, monkeypatch, caplog):
    monkeypatch.setattr(builtin, "_fuses_on", lambda device_type: False)
    monkeypatch.setattr(trainlab.log, "_WARNED", set())
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(2)]
    grads = [[torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in start]
             for _ in range(3)]
    params = [p.clone().requires_grad_(True) for p in start]
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        opt = build_optimizer(name, params, lr=0.1, weight_decay=0.1)
        build_optimizer(name, [torch.zeros(2, requires_grad=True)], lr=0.1)
    assert not opt.defaults["fused"]
    assert sum("no fused Adam/AdamW kernel for cpu" in r.message for r in caplog.records) == 1
    ref_params = [p.clone().requires_grad_(True) for p in start]
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    ref = cls(ref_params, lr=0.1, weight_decay=0.1, foreach=False)
    for step in grads:
        for p, q, gr in zip(params, ref_params, step):
            p.grad, q.grad = gr.clone(), gr.clone()
        opt.step()
        ref.step()
    for p, q in zip(params, ref_params):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_kernels_present_means_fused():
    params = [torch.zeros(3, requires_grad=True)]
    opt = build_optimizer("adamw", params, lr=0.1)
    assert bool(opt.defaults["fused"]) is builtin._fuses_on("cpu")
