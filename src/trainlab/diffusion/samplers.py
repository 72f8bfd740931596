r"""Samplers of a VP diffusion: DDPM (ancestral), DDIM, and the probability-flow ODE.

Every sampler takes a denoiser ``eps_fn(x, t) -> eps`` (``t`` a tensor of timesteps of shape
``(n,)``, the calling convention of ``diffusers``' ``UNet2DModel``; wrap one with
:func:`unet_denoiser`) and a schedule: a :class:`~trainlab.diffusion.schedules.NoiseSchedule`
or a ``diffusers`` ``DDPMScheduler``/``DDIMScheduler`` (converted by
:func:`~trainlab.diffusion.schedules.from_diffusers`). Randomness only through ``generator``.

DDIM step from ``t`` to ``s < t`` (Song, Meng & Ermon, "Denoising Diffusion Implicit Models",
2021, eq. 12 and 16):

.. math::
    \hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon}{\sqrt{\bar\alpha_t}},\quad
    x_s = \sqrt{\bar\alpha_s}\hat x_0 + \sqrt{1-\bar\alpha_s-\sigma^2}\,\varepsilon + \sigma z,
    \quad \sigma^2 = \eta^2\frac{1-\bar\alpha_s}{1-\bar\alpha_t}
    \Big(1-\frac{\bar\alpha_t}{\bar\alpha_s}\Big).

DDPM step (Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", 2020, Alg. 2), with
the posterior variance :math:`\tilde\beta_t` (``diffusers``' ``"fixed_small"``):

.. math:: x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}
          \varepsilon\Big) + \sqrt{\tilde\beta_t}\,z.

Probability-flow ODE (Song et al., "Score-Based Generative Modeling through SDEs", 2021,
eq. 13) in the variables :math:`u = x/\sqrt{\bar\alpha}`, :math:`\kappa =
\sqrt{(1-\bar\alpha)/\bar\alpha}`: :math:`du/d\kappa = \varepsilon(x, t(\kappa))`; DDIM with
:math:`\eta = 0` is its Euler method. Solved with ``torchdiffeq``.

Deviations: no clipping or thresholding of :math:`\hat x_0` (``diffusers``' DDIM clips to
[-1, 1] by default; pass ``clip_sample=False`` there to compare).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from trainlab.diffusion.schedules import NoiseSchedule, from_diffusers, kappa
from trainlab.errors import check_range

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def as_schedule(schedule: NoiseSchedule | Any) -> NoiseSchedule:
    """A :class:`NoiseSchedule`, or the one of a ``diffusers`` scheduler."""
    return schedule if isinstance(schedule, NoiseSchedule) else from_diffusers(schedule)


def unet_denoiser(unet: Any) -> EpsFn:
    """``eps_fn`` of a ``diffusers`` ``UNet2DModel`` (an epsilon-predicting network called as
    ``unet(x, t).sample``)."""

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return unet(x, t).sample

    return eps_fn


def edm_denoiser(eps_fn: EpsFn, schedule: NoiseSchedule | Any
                 ) -> Callable[[torch.Tensor, torch.Tensor | float], torch.Tensor]:
    r"""The EDM/VE denoiser :math:`D(x, \sigma)` of a VP noise predictor (Karras et al. 2022,
    Sec. 2 and App. C.1): with :math:`\sigma = \kappa = \sqrt{(1-\bar\alpha)/\bar\alpha}`,
    :math:`x_{VE} = x_{VP}/\sqrt{\bar\alpha}`, so
    :math:`D(x, \sigma) = x - \sigma\,\varepsilon(x/\sqrt{1+\sigma^2},\ t(\sigma))`, with the
    real timestep :math:`t(\sigma)` of :meth:`NoiseSchedule.t_of_kappa` (a ``UNet2DModel``
    accepts real timesteps). Lets the EDM-based methods (EnKG, DPS) run on any VP model."""
    sched = as_schedule(schedule)

    def denoise(x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        sig = torch.as_tensor(sigma, dtype=torch.float64)
        t = sched.t_of_kappa(sig).expand(x.shape[0])
        s = sig.to(x.dtype)
        return x - s * eps_fn(x / torch.sqrt(1 + s ** 2), t)

    return denoise


def _bcast(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    c = torch.as_tensor(c, dtype=x.dtype)
    return c.reshape(c.shape + (1,) * (x.ndim - c.ndim))


def tweedie_x0(x: torch.Tensor, eps: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    r""":math:`\hat x_0 = (x - \sqrt{1-\bar\alpha}\,\varepsilon)/\sqrt{\bar\alpha}`."""
    return (x - _bcast((1 - abar).sqrt(), x) * eps) / _bcast(abar.sqrt(), x)


def ddim_coefficients(abar_t: torch.Tensor, abar_s: torch.Tensor, eta: float = 0.0
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The DDIM step as an affine map, :math:`x_s = a\,x_t + b\,\varepsilon + c\,z`:
    :math:`a = \sqrt{\bar\alpha_s/\bar\alpha_t}`,
    :math:`b = \sqrt{1-\bar\alpha_s-\sigma^2} - a\sqrt{1-\bar\alpha_t}`, :math:`c = \sigma`."""
    var = eta ** 2 * (1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s)
    a = (abar_s / abar_t).sqrt()
    b = (1 - abar_s - var).clamp(min=0).sqrt() - a * (1 - abar_t).sqrt()
    return a, b, var.sqrt()


def ddim_step(x: torch.Tensor, eps: torch.Tensor, abar_t: torch.Tensor, abar_s: torch.Tensor,
              *, eta: float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
    """One DDIM step ``t -> s`` (module docstring); ``noise`` is needed iff ``eta > 0``."""
    a, b, c = ddim_coefficients(torch.as_tensor(abar_t, dtype=torch.float64),
                                torch.as_tensor(abar_s, dtype=torch.float64), eta)
    out = _bcast(a, x) * x + _bcast(b, x) * eps
    if eta > 0:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs the noise z")
        out = out + _bcast(c, x) * noise
    return out


def ddpm_step(x: torch.Tensor, eps: torch.Tensor, t: int, schedule: NoiseSchedule, *,
              noise: torch.Tensor | None = None) -> torch.Tensor:
    """One ancestral DDPM step ``t -> t-1`` (no noise at ``t = 0``)."""
    abar_t, abar_prev = schedule.abar(t), schedule.abar(t - 1)
    alpha = abar_t / abar_prev
    beta = 1 - alpha
    mean = (x - _bcast(beta / (1 - abar_t).sqrt(), x) * eps) / _bcast(alpha.sqrt(), x)
    if t == 0:
        return mean
    if noise is None:
        raise ValueError("ddpm_step at t > 0 needs the noise z")
    var = beta * (1 - abar_prev) / (1 - abar_t)
    return mean + _bcast(var.clamp(min=1e-20).sqrt(), x) * noise


@dataclass(frozen=True)
class SampleResult:
    """A sample, the number of denoiser calls (each over the whole batch) and, if asked, the
    states after each step (first entry: the initial noise)."""

    x0: torch.Tensor
    nfe: int
    trajectory: list[torch.Tensor] | None = None


def _tvec(t: int | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), int(t), dtype=torch.long)


def ddim_sample(eps_fn: EpsFn, schedule: NoiseSchedule | Any, x_T: torch.Tensor, *,
                num_steps: int = 50, eta: float = 0.0, generator: torch.Generator | None = None,
                timesteps: torch.Tensor | None = None, trajectory: bool = False) -> SampleResult:
    """DDIM from ``x_T`` over ``timesteps`` (default
    ``schedule.inference_timesteps(num_steps)``), ending at clean data (``abar = 1``)."""
    sched = as_schedule(schedule)
    check_range("eta", eta, low=0.0, owner="ddim_sample")
    ts = sched.inference_timesteps(num_steps) if timesteps is None else torch.as_tensor(
        timesteps, dtype=torch.long)
    x, states = x_T, [x_T]
    for i, t in enumerate(ts.tolist()):
        s = ts[i + 1].item() if i + 1 < len(ts) else -1
        eps = eps_fn(x, _tvec(t, x))
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype) if eta > 0 else None
        x = ddim_step(x, eps, sched.abar(t), sched.abar(s), eta=eta, noise=z)
        if trajectory:
            states.append(x)
    return SampleResult(x, len(ts), states if trajectory else None)


def ddpm_sample(eps_fn: EpsFn, schedule: NoiseSchedule | Any, x_T: torch.Tensor, *,
                generator: torch.Generator | None = None) -> SampleResult:
    """Ancestral DDPM over all T timesteps."""
    sched = as_schedule(schedule)
    x = x_T
    for t in range(sched.num_steps - 1, -1, -1):
        eps = eps_fn(x, _tvec(t, x))
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype) if t > 0 else None
        x = ddpm_step(x, eps, t, sched, noise=z)
    return SampleResult(x, sched.num_steps)


def probability_flow_sample(eps_fn: EpsFn, schedule: NoiseSchedule | Any, x_T: torch.Tensor,
                            *, t_start: float | None = None, method: str = "dopri5",
                            rtol: float = 1e-6, atol: float = 1e-8) -> SampleResult:
    r"""Integrate the probability-flow ODE from ``t_start`` (default T-1) to clean data with
    ``torchdiffeq.odeint`` in the :math:`(u, \kappa)` variables (module docstring)."""
    from torchdiffeq import odeint

    sched = as_schedule(schedule)
    t0 = sched.num_steps - 1 if t_start is None else t_start
    k0 = kappa(sched.abar_continuous(torch.tensor(float(t0))))
    calls = [0]

    def rhs(k: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        t = sched.t_of_kappa(k).expand(u.shape[0])
        return eps_fn(u / torch.sqrt(1 + k.to(u.dtype) ** 2), t)

    span = torch.stack([k0, torch.zeros((), dtype=torch.float64)]).to(x_T.dtype)
    u0 = x_T * torch.sqrt(1 + k0.to(x_T.dtype) ** 2)
    u = odeint(rhs, u0, span, method=method, rtol=rtol, atol=atol)[-1]
    return SampleResult(u, calls[0])


__all__ = ["EpsFn", "SampleResult", "as_schedule", "ddim_coefficients", "ddim_sample",
           "edm_denoiser",
           "ddim_step", "ddpm_sample", "ddpm_step", "probability_flow_sample", "tweedie_x0",
           "unet_denoiser"]
