"""Every random draw of an optimizer comes through a generator: with none given, a private
seeded one, so the global RNG stream is untouched and two runs agree."""

from __future__ import annotations

import pytest
import torch

from trainlab.optim import OPTIMIZERS, build_optimizer

# the optimizers that draw random numbers (they take ``generator=``)
DRAWING = ["gravity", "psgd", "psgd-lra", "entropy-sgd", "dasa", "thermodynamic-ngd"]


def _problem():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(12, 3, generator=g, dtype=torch.float64)
    y = torch.randn(12, 5, generator=g, dtype=torch.float64)
    return w, x, y


def _run(name: str) -> torch.Tensor:
    w, x, y = _problem()
    opt = build_optimizer(name, [w], lr=1e-2)
    flags = OPTIMIZERS.entry(name).flags

    def closure():
        opt.zero_grad()
        loss = ((torch.tanh(x @ w.T) - y) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(3):
        if flags.get("needs_closure", False):
            opt.step(closure)
        else:
            closure()
            opt.step()
    return w.detach().clone()


@pytest.mark.parametrize("name", [n for n in DRAWING if n in OPTIMIZERS])
def test_no_generator_leaves_global_rng_untouched_and_is_reproducible(name):
    if OPTIMIZERS.entry(name).flags.get("needs_ggn", False):
        pytest.skip(f"{name} needs a GGN closure (tested in its own file)")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = _run(name)
    assert torch.equal(torch.get_rng_state(), before), f"{name} drew from the global RNG"
    torch.manual_seed(999)  # a different global stream must not change the result
    assert torch.equal(_run(name), first)
