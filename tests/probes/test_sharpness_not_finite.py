"""A Hessian-vector product that is not finite (a diverging run) is a clear result, not a
crash: Lanczos says "HVP not finite", the sharpness probe records NaN with the reason, and
training goes on."""

from __future__ import annotations

import math

import pytest
import torch
from _probe_helpers import monitored_steps
from torch import nn

from trainlab.curvature import LinearOperator, lanczos
from trainlab.errors import NotFiniteError
from trainlab.train import Monitor


class _BlowsUp(LinearOperator):
    """diag(1..n), except that product ``bad`` (1-based) returns ``value`` in one entry."""

    def __init__(self, n: int, bad: int, value: float):
        self.dim, self.dtype, self.device = n, torch.float64, torch.device("cpu")
        self.bad, self.value, self.calls = bad, value, 0

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = torch.arange(1, self.dim + 1, dtype=torch.float64) * v
        if self.calls == self.bad:
            out[3] = self.value
        return out

    def matmat(self, m: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.matvec(c) for c in m.T], dim=1)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_lanczos_says_hvp_not_finite_instead_of_failing_in_eigh(value):
    op = _BlowsUp(12, bad=4, value=value)
    with pytest.raises(NotFiniteError, match="HVP not finite.*product 4"):
        lanczos(op, k=1, tol=1e-12, generator=torch.Generator().manual_seed(0))
    # the same operator without the bad product converges to the top eigenvalue 12
    res = lanczos(_BlowsUp(12, bad=0, value=0.0), k=1, generator=torch.Generator().manual_seed(0))
    assert res.all_converged and abs(float(res.values[0]) - 12.0) < 1e-8


class _Cusp(nn.Module):
    """A finite loss whose second derivative is infinite at the weights (|w|^1.5 at w = 0),
    next to an ordinary linear layer: every Hessian-vector product has NaN/Inf entries."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)
        self.w = nn.Parameter(torch.zeros(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) + self.w.abs().pow(1.5).sum()


def test_sharpness_probe_records_nan_with_the_reason_and_training_goes_on(caplog):
    torch.manual_seed(0)
    model = _Cusp()
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    opt = torch.optim.SGD(model.lin.parameters(), lr=0.1)  # w stays at the cusp
    mon = Monitor(model, loss_fn=nn.functional.mse_loss, optimizer=opt,
                  probes="sharpness,loss", every=1)
    losses = monitored_steps(mon, model, opt, nn.functional.mse_loss, x, y, steps=3)
    sharp = [v for _, v in mon.history["sharpness"]]
    assert len(sharp) == 3 and all(math.isnan(v) for v in sharp)
    assert [v for _, v in mon.history["sharpness_converged"]] == [0.0] * 3
    assert "eos_ratio" not in mon.history
    assert "HVP not finite" in mon.notes["sharpness"]
    assert "sharpness" not in mon.skipped
    assert losses[-1] < losses[0]  # the run trained on
