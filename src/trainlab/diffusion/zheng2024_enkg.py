r"""Ensemble Kalman diffusion guidance (EnKG): derivative-free posterior guidance for inverse
problems with a black-box forward model, and DPS as the gradient-based comparison.

"Ensemble Kalman Diffusion Guidance: A Derivative-free Method for Inverse Problems" (Zheng,
Chen, Wang, Huang, Stuart & Yue, 2024, papers.md row 106). A pretrained EDM prior
(:math:`x_\sigma = x_0 + \sigma\xi`, denoiser :math:`D(x, \sigma)`) is sampled with Euler
steps of its probability-flow ODE on the Karras grid. At the steps inside a window, each of
``num_updates`` corrections moves all J particles at once:

1. map each particle to clean data with the deterministic ODE, :math:`x_0^{(j)} =
   \phi(x^{(j)})` (Euler, from the current :math:`\sigma` to :math:`\sigma_{min}` on a Karras
   grid of :math:`\min(1 + (N-i)/\!/4,\ 20)` points);
2. query the black box, :math:`\hat y^{(j)} = G(x_0^{(j)})`;
3. :math:`x^{(j)} \leftarrow x^{(j)} - w\,\hat C_{x\hat y}\,(\hat y^{(j)} - y)`, with the
   ensemble cross-covariance :math:`\hat C_{x\hat y} = \frac1J\sum_k (x^{(k)} - \bar x)
   (\hat y^{(k)} - \bar{\hat y})^T` and :math:`w = s/\|c\|_F`, where :math:`c_{jk} =
   \langle \hat y^{(j)} - y, \hat y^{(k)} - \bar{\hat y}\rangle / J` (the authors' code).

For an affine :math:`G\circ\phi` (:math:`\hat y = Hx + b`) the update equals the
covariance-preconditioned gradient step :math:`-w\hat C_{xx}H^T(Hx^{(j)} + b - y)` of
:math:`\tfrac12\|G(\phi(x)) - y\|^2` without any derivative of G (the paper's motivation,
Sec. 3); :func:`enkg_correction` is tested against it, and :func:`ensemble_kalman_analysis`
(the one-step ensemble Kalman update of which this is the small-step form) against a dense
Kalman update.

A VP noise predictor (e.g. a ``diffusers`` ``UNet2DModel`` with its scheduler) becomes the
EDM denoiser these functions take through :func:`trainlab.diffusion.samplers.edm_denoiser`.

Defaults are the paper's Navier-Stokes setting as released (guidance scale s = 2, 2
corrections per step, window excluding the first and last 10% of steps (the code's
default), :math:`\sigma_{max} = 80`, :math:`\sigma_{min} = 0.002`, :math:`\rho = 7`).

Observed limitation (not in the paper's experiments): the correction uses one global,
ensemble-wide linearisation of :math:`G\circ\phi`, so when the ensemble straddles modes that
G cannot tell apart by a linear statistic (e.g. :math:`G(x) = (x_1x_2, x_1 - x_2)` with
solutions :math:`\pm x^*` and a symmetric ensemble, where :math:`\mathrm{Cov}(x, x_1x_2)
\approx 0`), the even part of G is not corrected; about half the particles then miss.

Deviations from the paper: the normalisation :math:`w = s/\|c\|_F` of the authors' code is
used (the paper's Prop. 1 weight differs); the number of sampler steps N and of particles J
are arguments (the paper: J = 2048, batches of 64), chosen small in the tests.

DPS: Chung, Kim, McCann, Klasky & Ye, "Diffusion Posterior Sampling for General Noisy
Inverse Problems", ICLR 2023, Alg. 1, here on the same EDM Euler sampler: after each Euler
step, :math:`x \leftarrow x - \zeta\,\nabla_x\|y - G(D(x,\sigma))\|` (their step
:math:`\zeta_i\nabla\|\cdot\|^2` with :math:`\zeta_i = \zeta/(2\|\cdot\|)`). It needs autograd
through D and G.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from trainlab.diffusion._registry import DIFFUSION
from trainlab.diffusion.schedules import karras_sigmas
from trainlab.errors import check_range

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ForwardModel = Callable[[torch.Tensor], torch.Tensor]


def black_box(fn: Callable[[np.ndarray], np.ndarray]) -> ForwardModel:
    """A forward model that only exists as a numpy function (no gradients): particles are
    passed as a float64 array ``(J, ...)`` and the result comes back as a tensor."""

    def g(x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(np.asarray(fn(x.detach().cpu().numpy().astype(np.float64))),
                               dtype=x.dtype)

    return g


def edm_euler_step(denoiser: Denoiser, x: torch.Tensor, sigma: torch.Tensor,
                   sigma_next: torch.Tensor) -> torch.Tensor:
    r"""One Euler step of the EDM probability-flow ODE,
    :math:`x + (\sigma' - \sigma)(x - D(x, \sigma))/\sigma`."""
    return x + (sigma_next - sigma) * (x - denoiser(x, sigma)) / sigma


def ode_to_clean(denoiser: Denoiser, x: torch.Tensor, sigma_start: torch.Tensor, num_steps: int,
                 *, sigma_min: float = 0.002, rho: float = 7.0) -> tuple[torch.Tensor, int]:
    r""":math:`\phi(x)`: Euler from ``sigma_start`` on a ``num_steps``-point Karras grid to
    ``sigma_min`` and then 0 (one denoiser call when ``num_steps == 1``). Returns the clean
    estimate and the number of denoiser calls."""
    if num_steps == 1:
        return denoiser(x, sigma_start), 1
    grid = karras_sigmas(num_steps, sigma_min, float(sigma_start), rho)
    for s, s_next in zip(grid[:-1], grid[1:], strict=True):
        x = edm_euler_step(denoiser, x, s, s_next)
    return x, num_steps


def enkg_correction(particles: torch.Tensor, ys: torch.Tensor, observation: torch.Tensor,
                    scale: float) -> torch.Tensor:
    """One EnKG particle update (module docstring, step 3); ``ys`` are the black-box outputs
    of the particles' clean estimates. Returns the moved particles."""
    n = particles.shape[0]
    dx = (particles - particles.mean(0, keepdim=True)).reshape(n, -1)
    dy = (ys - ys.mean(0, keepdim=True)).reshape(n, -1)
    err = (ys - observation).reshape(n, -1)
    coef = err @ dy.T / n
    norm = torch.linalg.matrix_norm(coef)
    if norm == 0:
        return particles
    return particles - (scale / norm) * (coef @ dx).reshape(particles.shape)


def ensemble_kalman_analysis(particles: torch.Tensor, ys: torch.Tensor,
                             observation: torch.Tensor, noise_cov: torch.Tensor,
                             perturbations: torch.Tensor | None = None) -> torch.Tensor:
    r"""The ensemble Kalman analysis step :math:`x^{(j)} + \hat C_{x\hat y}(\hat C_{\hat y\hat y}
    + \Gamma)^{-1}(y + \eta^{(j)} - \hat y^{(j)})` (Evensen 1994; Iglesias, Law & Stuart,
    "Ensemble Kalman methods for inverse problems", 2013, eq. 2.5), with sample covariances
    over the ensemble (normalised by J - 1) and optional observation perturbations
    :math:`\eta^{(j)} \sim N(0, \Gamma)`. Particles ``(J, d)``, outputs ``(J, m)``."""
    n = particles.shape[0]
    dx = particles - particles.mean(0, keepdim=True)
    dy = ys - ys.mean(0, keepdim=True)
    cxy, cyy = dx.T @ dy / (n - 1), dy.T @ dy / (n - 1)
    target = observation + (perturbations if perturbations is not None else 0)
    gain_t = torch.linalg.solve(cyy + noise_cov, cxy.T)  # (m, d) = K^T
    return particles + (target - ys) @ gain_t


@dataclass(frozen=True)
class GuidedSample:
    """Particles and the cost: denoiser calls and forward-model calls made one after another
    (each call over the whole ensemble), and whether gradients of G were used."""

    x0: torch.Tensor
    denoiser_calls: int
    forward_calls: int
    uses_gradients: bool


def enkg_sample(denoiser: Denoiser, forward_model: ForwardModel, observation: torch.Tensor,
                x_init: torch.Tensor, *, num_steps: int = 80, num_updates: int = 2,
                guidance_scale: float = 2.0, threshold_start: float = 0.05,
                threshold_end: float = 0.05, sigma_max: float = 80.0, sigma_min: float = 0.002,
                rho: float = 7.0) -> GuidedSample:
    """EnKG sampling (module docstring). ``x_init`` are the J initial particles, already
    scaled to ``sigma_max`` (e.g. ``sigma_max * randn``); ``forward_model`` is only ever
    called without gradients (wrap numpy code with :func:`black_box`)."""
    check_range("num_steps", num_steps, low=2, owner="enkg_sample")
    check_range("num_updates", num_updates, low=0, owner="enkg_sample")
    check_range("guidance_scale", guidance_scale, low=0.0, owner="enkg_sample")
    grid = karras_sigmas(num_steps, sigma_min, sigma_max, rho)
    x, n_den, n_fwd = x_init, 0, 0
    with torch.no_grad():
        for i in range(num_steps):
            sigma, sigma_next = grid[i], grid[i + 1]
            if threshold_start * num_steps < i < num_steps - int(threshold_end * num_steps):
                for _ in range(num_updates):
                    x0, calls = ode_to_clean(denoiser, x, sigma, min(1 + (num_steps - i) // 4,
                                                                     20), sigma_min=sigma_min,
                                             rho=rho)
                    ys = forward_model(x0)
                    n_den, n_fwd = n_den + calls, n_fwd + 1
                    x = enkg_correction(x, ys, observation, guidance_scale)
            x = edm_euler_step(denoiser, x, sigma, sigma_next)
            n_den += 1
    return GuidedSample(x, n_den, n_fwd, False)


def dps_sample(denoiser: Denoiser, forward_model: ForwardModel, observation: torch.Tensor,
               x_init: torch.Tensor, *, num_steps: int = 40, step_size: float = 1.0,
               sigma_max: float = 80.0, sigma_min: float = 0.002, rho: float = 7.0
               ) -> GuidedSample:
    r"""DPS on the EDM Euler sampler (module docstring): per step one denoiser call with
    autograd, one forward-model call, and the step :math:`-\zeta\nabla_x\|y - G(D(x,
    \sigma))\|` per particle."""
    check_range("num_steps", num_steps, low=2, owner="dps_sample")
    grid = karras_sigmas(num_steps, sigma_min, sigma_max, rho)
    x = x_init.detach()
    for i in range(num_steps):
        sigma, sigma_next = grid[i], grid[i + 1]
        xg = x.detach().requires_grad_(True)
        x0 = denoiser(xg, sigma)
        res = (observation - forward_model(x0)).reshape(x.shape[0], -1).norm(dim=1)
        (grad,) = torch.autograd.grad(res.sum(), xg)
        with torch.no_grad():
            x = x + (sigma_next - sigma) * (x - x0) / sigma - step_size * grad
    return GuidedSample(x.detach(), num_steps, num_steps, True)


DIFFUSION.register("enkg", enkg_sample, papers=(106,),
                   summary="ensemble Kalman diffusion guidance: derivative-free posterior "
                           "sampling with a black-box forward model")
DIFFUSION.register("dps", dps_sample,
                   summary="diffusion posterior sampling (Chung et al. 2023): gradient-based "
                           "guidance through the denoiser and forward model")

__all__ = ["GuidedSample", "black_box", "dps_sample", "edm_euler_step", "enkg_correction",
           "enkg_sample", "ensemble_kalman_analysis", "ode_to_clean"]
