r"""Linear solves as a simulated Ornstein-Uhlenbeck process (the analog solver of TNGD).

For symmetric positive-definite :math:`A` the process

.. math::  dx = -(A x - b)\, dt + \sqrt{2 T}\, dW

has stationary law :math:`\mathcal N(A^{-1} b,\; T A^{-1})`: its mean is the solution of
:math:`A x = b`, reached at rate :math:`e^{-\lambda_{\min}(A)\, t}` from any start, and its
noise is the temperature ``T`` of the hardware. :func:`ou_solve` integrates it with
Euler-Maruyama, which is stable only for ``dt < 2 / lambda_max``: before integrating,
:func:`ou_solve` estimates ``lambda_max`` by ``power_iters`` power iterations (a lower bound,
so a reported instability is real) and raises :class:`~trainlab.errors.ConfigError` naming the
largest stable ``dt``; a run that still blows up (the estimate was low) raises the same error
instead of returning garbage. It returns either the final state
(``average=False``, the paper's read-out at time ``t``) or the time average over the second
half of the run, which cuts the noise variance as ``1/t``. Started at ``x0``, the noiseless
read-out is exactly :math:`M x_0 + (I - M) A^{-1} b` with :math:`M = (I - dt A)^{n}` (the
continuous process: :math:`e^{-At}`), the moving average TNGD relies on (tested).

References:
    Donatella et al., "Thermodynamic Natural Gradient Descent", 2024 (papers.md row 55);
    Aifer et al., "Thermodynamic linear algebra", 2023 (the OU solver).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from trainlab.errors import ConfigError, check_range


def ou_solve(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, *,
             x0: torch.Tensor | None = None, time: float = 20.0, dt: float = 0.05,
             temperature: float = 0.0, average: bool = False,
             generator: torch.Generator | None = None, power_iters: int = 10) -> torch.Tensor:
    """Approximate ``A^{-1} b`` by simulating the OU process for ``time`` (see module).

    Raises:
        ConfigError: ``dt >= 2 / lambda_max`` (the estimate from ``power_iters`` power
            iterations), or the integration diverged.
    """
    check_range("time", time, low=0.0, low_open=True, owner="ou_solve")
    check_range("dt", dt, low=0.0, low_open=True, owner="ou_solve")
    check_range("temperature", temperature, low=0.0, owner="ou_solve")
    steps = max(1, math.ceil(time / dt))
    lam = largest_eigenvalue_estimate(matvec, b, power_iters)
    if dt * lam >= 2.0:
        raise ConfigError(f"The 'dt' parameter of ou_solve must be below 2/lambda_max = "
                          f"{2.0 / lam:.4g} for a stable Euler-Maruyama solve (lambda_max >= "
                          f"{lam:.4g}). Got {dt!r} instead.")
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    bound = _BLOW_UP * (float(x.norm()) + float(b.norm()) + 1.0)
    noise_scale = math.sqrt(2.0 * temperature * dt)
    total, count = torch.zeros_like(b), 0
    for k in range(steps):
        x = x - dt * (matvec(x) - b)
        if noise_scale > 0:
            x = x + noise_scale * torch.randn(b.shape, dtype=b.dtype, device=b.device,
                                              generator=generator)
        if k % 16 == 15 and not float(x.norm()) <= bound:
            raise ConfigError(f"The 'dt' parameter of ou_solve ({dt!r}) made the "
                              "Euler-Maruyama solve diverge: lower it below 2/lambda_max "
                              f"(the power estimate was lambda_max >= {lam:.4g})")
        if average and k >= steps // 2:
            total, count = total + x, count + 1
    return total / count if average else x


_BLOW_UP = 1e8  # |x| beyond this multiple of the problem's scale: the integration diverged


def largest_eigenvalue_estimate(matvec: Callable[[torch.Tensor], torch.Tensor],
                                start: torch.Tensor, iters: int) -> float:
    """A lower bound on ``lambda_max`` of the SPD operator: the Rayleigh quotient after
    ``iters`` power iterations from ``start`` (a deterministic start: no random draw).
    Returns 0 for ``iters == 0`` or a zero start."""
    v = start.clone()
    lam = 0.0
    for _ in range(iters):
        n = v.norm()
        if not float(n) > 0:
            return lam
        v = v / n
        av = matvec(v)
        lam = max(lam, float(v @ av))
        v = av
    return lam
