"""GradES against its rule written out: which tensors freeze, when, and what they do after."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.optim import build_optimizer
from trainlab.optim.grades import grades
from trainlab.optim.transforms import TransformOptimizer, identity, scale_by_adam

from ._problems import assert_close_lists, run


def _grad_sequence(steps=12):
    # tensor 0: gradient settles (change -> 0); tensor 1: keeps changing
    out = []
    for t in range(1, steps + 1):
        out.append([torch.full((2, 2), 1.0 + 0.5**t, dtype=torch.float64),
                    torch.tensor([(-1.0) ** t, 2.0], dtype=torch.float64)])
    return out


@pytest.mark.parametrize("metric", ["grad_change", "grad"])
def test_reference_rule_with_sgd_inner(metric):
    tau, alpha, total, lr = 0.01, 0.25, 12, 0.1
    x0 = [torch.zeros(2, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)]
    xs = [x.clone() for x in x0]
    prev = [torch.zeros_like(x) for x in x0]
    frozen_at = [-1, -1]
    for t, gs in enumerate(_grad_sequence(), start=1):
        for i, g in enumerate(gs):
            if frozen_at[i] >= 0:
                continue
            m = float((g - prev[i]).abs().sum() if metric == "grad_change" else g.abs().sum())
            prev[i] = g
            if t >= alpha * total and m < tau:
                frozen_at[i] = t
                continue
            xs[i] = xs[i] - lr * g
    ps = [x.clone().requires_grad_(True) for x in x0]
    opt = TransformOptimizer(ps, grades(identity(), tau, alpha, total, metric), lr=lr)
    for gs in _grad_sequence():
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        opt.step()
    for p, x in zip(ps, xs):
        torch.testing.assert_close(p.detach(), x, rtol=1e-14, atol=1e-15)
    assert opt._transform_states[0].frozen_at == frozen_at
    if metric == "grad_change":
        assert frozen_at == [9, -1]  # change 4 * 0.5^t first < 0.01 at t = 9
    else:
        assert frozen_at == [-1, -1]  # |g|_1 never falls below tau


def test_frozen_tensor_inner_state_stops_and_never_moves_again():
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = TransformOptimizer([p], grades(scale_by_adam(0.9, 0.999, 1e-8), tau=0.5, alpha=0.0,
                                         total_steps=10), lr=0.1)
    p.grad = torch.ones(3, dtype=torch.float64)
    opt.step()  # change from 0 is 3 > tau: trains
    moved = p.detach().clone()
    opt.step()  # same gradient: change 0 < tau: frozen, no update
    torch.testing.assert_close(p.detach(), moved)
    st = opt._transform_states[0]
    assert st.frozen_at == [2]
    p.grad = -5 * torch.ones(3, dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), moved)


def test_validation():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ConfigError, match="alpha"):
        build_optimizer("grades-adamw", p, lr=1e-3, alpha=1.5)
    with pytest.raises(ConfigError, match="metric"):
        build_optimizer("grades-adamw", p, lr=1e-3, metric="weights")
    with pytest.raises(ConfigError, match="total_steps"):
        build_optimizer("grades-adamw", p, lr=1e-3, total_steps=0)


def test_never_frozen_is_torch_adamw():
    """tau = 0 freezes nothing (an L1 norm is never < 0): grades-adamw must then be
    torch.optim.AdamW step for step (200 steps, weight decay on)."""
    hyper = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05)
    ours, opt = run(lambda p: build_optimizer("grades-adamw", p, tau=0.0, alpha=0.0,
                                              total_steps=10, **hyper), 200)
    ref, _ = run(lambda p: torch.optim.AdamW(p, foreach=False, **hyper), 200)
    assert_close_lists(ours, ref, rtol=1e-12, atol=1e-13)
    assert opt._transform_states[0].frozen_at == [-1, -1]
