r"""Linear solves as a simulated Ornstein-Uhlenbeck process (the analog solver of TNGD).

For symmetric positive-definite :math:`A` the process

.. math::  dx = -(A x - b)\, dt + \sqrt{2 T}\, dW

has stationary law :math:`\mathcal N(A^{-1} b,\; T A^{-1})`: its mean is the solution of
:math:`A x = b`, reached at rate :math:`e^{-\lambda_{\min}(A)\, t}` from any start, and its
noise is the temperature ``T`` of the hardware. :func:`ou_solve` integrates it with
Euler-Maruyama (stable for ``dt < 2 / lambda_max``) and returns either the final state
(``average=False``, the paper's read-out at time ``t``) or the time average over the second
half of the run, which cuts the noise variance as ``1/t``.

References:
    Donatella et al., "Thermodynamic Natural Gradient Descent", 2024 (papers.md row 55);
    Aifer et al., "Thermodynamic linear algebra", 2023 (the OU solver).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from trainlab.errors import check_range


def ou_solve(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, *,
             x0: torch.Tensor | None = None, time: float = 20.0, dt: float = 0.05,
             temperature: float = 0.0, average: bool = False,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Approximate ``A^{-1} b`` by simulating the OU process for ``time`` (see module)."""
    check_range("time", time, low=0.0, low_open=True, owner="ou_solve")
    check_range("dt", dt, low=0.0, low_open=True, owner="ou_solve")
    check_range("temperature", temperature, low=0.0, owner="ou_solve")
    steps = max(1, math.ceil(time / dt))
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    noise_scale = math.sqrt(2.0 * temperature * dt)
    total, count = torch.zeros_like(b), 0
    for k in range(steps):
        x = x - dt * (matvec(x) - b)
        if noise_scale > 0:
            x = x + noise_scale * torch.randn(b.shape, dtype=b.dtype, device=b.device,
                                              generator=generator)
        if average and k >= steps // 2:
            total, count = total + x, count + 1
    return total / count if average else x
