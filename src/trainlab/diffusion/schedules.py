r"""Noise schedules of variance-preserving diffusions, built on ``diffusers`` schedulers.

A variance-preserving (VP) diffusion is fixed by its cumulative signal level
:math:`\bar\alpha_t = \prod_{s \le t} (1 - \beta_s)`, ``t = 0 .. T-1``:

.. math:: q(x_t \mid x_0) = N(\sqrt{\bar\alpha_t}\, x_0,\ (1 - \bar\alpha_t) I).

:class:`NoiseSchedule` holds :math:`\bar\alpha` in float64 and nothing else; every sampler and
loss of :mod:`trainlab.diffusion` reads it. The schedules come from ``diffusers``
(:func:`vp_schedule` builds a ``DDPMScheduler`` and takes its betas; :func:`from_diffusers`
wraps a scheduler the user already has), so the beta grids are exactly those of the library.

References:
    Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", 2020 (the linear schedule
    1e-4 .. 0.02 over T = 1000). Song, Meng & Ermon, "Denoising Diffusion Implicit Models",
    2021 (the strided inference grid).

Deviations: ``diffusers`` stores betas in float32; we cast them to float64 and form the
cumulative product in float64, so :math:`\bar\alpha` differs from the library's float32
``alphas_cumprod`` by float32 rounding (~1e-7 relative).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trainlab.errors import ConfigError, check_choice, check_range

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
SUPPORTED_SCHEDULERS = ("DDPMScheduler", "DDIMScheduler")


@dataclass(frozen=True)
class NoiseSchedule:
    r"""A VP noise schedule: :math:`\bar\alpha_t` for ``t = 0 .. T-1`` (float64, strictly
    decreasing in (0, 1)), i.e. a noise level :math:`1 - \bar\alpha_t` that strictly rises.

    Index ``-1`` means "clean data" (:math:`\bar\alpha = 1`), the target of the last DDIM step
    (``diffusers``' ``set_alpha_to_one=True``).
    """

    alphas_cumprod: torch.Tensor

    def __post_init__(self) -> None:
        a = torch.as_tensor(self.alphas_cumprod, dtype=torch.float64).detach()
        if a.ndim != 1 or len(a) < 1:
            raise ConfigError("The 'alphas_cumprod' parameter of NoiseSchedule must be a "
                              f"non-empty 1-D tensor. Got shape {tuple(a.shape)} instead.")
        if not bool(((a > 0) & (a < 1)).all()):
            raise ConfigError("The 'alphas_cumprod' parameter of NoiseSchedule must lie in "
                              f"(0, 1). Got range [{a.min().item():.4g}, {a.max().item():.4g}].")
        rising = torch.nonzero(a[1:] >= a[:-1]).flatten()
        if len(rising):
            i = int(rising[0])
            raise ConfigError("The noise level 1 - alphas_cumprod of NoiseSchedule must rise "
                              f"strictly with t; it does not at t={i}->{i + 1} "
                              f"(alphas_cumprod {a[i].item():.6g} -> {a[i + 1].item():.6g}).")
        object.__setattr__(self, "alphas_cumprod", a)

    @property
    def num_steps(self) -> int:
        """T, the number of training timesteps."""
        return len(self.alphas_cumprod)

    def abar(self, t: torch.Tensor | int) -> torch.Tensor:
        r""":math:`\bar\alpha_t` at integer timesteps ``t`` (``-1`` gives 1.0)."""
        t = torch.as_tensor(t, dtype=torch.long)
        padded = torch.cat([self.alphas_cumprod.new_ones(1), self.alphas_cumprod])
        return padded[t + 1]

    def kappa_grid(self) -> torch.Tensor:
        r""":math:`\kappa` at ``t = -1, 0, .., T-1`` (:func:`kappa`; 0 for clean data)."""
        return torch.cat([self.alphas_cumprod.new_zeros(1), kappa(self.alphas_cumprod)])

    def abar_continuous(self, t: torch.Tensor) -> torch.Tensor:
        r""":math:`\bar\alpha` at real ``t`` in [-1, T-1], with :math:`\kappa(t)` interpolated
        linearly between integer timesteps (exact at integers), so that :meth:`t_of_kappa`
        inverts it exactly."""
        grid = self.kappa_grid()
        s = (torch.as_tensor(t, dtype=torch.float64) + 1).clamp(0, self.num_steps)
        lo = s.floor().long().clamp(max=self.num_steps - 1)
        k = grid[lo] + (s - lo) * (grid[lo + 1] - grid[lo])
        return 1 / (1 + k ** 2)

    def t_of_kappa(self, k: torch.Tensor) -> torch.Tensor:
        r"""The real timestep whose :math:`\kappa` is ``k`` (inverse of :meth:`abar_continuous`)."""
        grid = self.kappa_grid()
        k = torch.as_tensor(k, dtype=torch.float64).clamp(0, grid[-1])
        hi = torch.searchsorted(grid, k).clamp(1, self.num_steps)
        w = (k - grid[hi - 1]) / (grid[hi] - grid[hi - 1])
        return hi - 2 + w

    def inference_timesteps(self, num_inference_steps: int) -> torch.Tensor:
        """The descending DDIM grid ``(T // n) * [n-1, ..., 1, 0]`` (``diffusers``'
        ``timestep_spacing="leading"``, ``steps_offset=0``)."""
        check_range("num_inference_steps", num_inference_steps, low=1, high=self.num_steps,
                    owner="NoiseSchedule.inference_timesteps")
        ratio = self.num_steps // num_inference_steps
        return torch.arange(num_inference_steps - 1, -1, -1, dtype=torch.long) * ratio


def from_diffusers(scheduler: Any) -> NoiseSchedule:
    """The :class:`NoiseSchedule` of a ``diffusers`` ``DDPMScheduler`` or ``DDIMScheduler``
    (betas cast to float64, cumulative product in float64).

    Raises:
        ConfigError: for any other scheduler type (one line naming the supported ones), or a
            schedule whose noise level does not rise strictly.
    """
    kind = type(scheduler).__name__
    check_choice("scheduler", kind, SUPPORTED_SCHEDULERS, owner="from_diffusers")
    if getattr(scheduler.config, "prediction_type", "epsilon") != "epsilon":
        raise ConfigError("The 'prediction_type' of the diffusers scheduler must be "
                          f"'epsilon'. Got {scheduler.config.prediction_type!r} instead.")
    betas = scheduler.betas.to(torch.float64)
    return NoiseSchedule(torch.cumprod(1 - betas, 0))


def vp_schedule(num_steps: int = 1000, beta_schedule: str = "linear", beta_start: float = 1e-4,
                beta_end: float = 0.02) -> NoiseSchedule:
    """The VP schedule of ``diffusers.DDPMScheduler`` with these settings (its defaults are the
    DDPM paper's: T = 1000, linear betas 1e-4 .. 0.02).

    Example:
        >>> s = vp_schedule(10, beta_start=0.1, beta_end=0.2)
        >>> round(float(s.abar(0)), 6), s.num_steps
        (0.9, 10)
    """
    check_range("num_steps", num_steps, low=1, owner="vp_schedule")
    check_choice("beta_schedule", beta_schedule, BETA_SCHEDULES, owner="vp_schedule")
    check_range("beta_start", beta_start, low=0.0, high=1.0, low_open=True, high_open=True,
                owner="vp_schedule")
    check_range("beta_end", beta_end, low=0.0, high=1.0, low_open=True, high_open=True,
                owner="vp_schedule")
    from diffusers import DDPMScheduler

    return from_diffusers(DDPMScheduler(num_train_timesteps=num_steps, beta_start=beta_start,
                                        beta_end=beta_end, beta_schedule=beta_schedule))


def karras_sigmas(num_steps: int = 80, sigma_min: float = 0.002, sigma_max: float = 80.0,
                  rho: float = 7.0) -> torch.Tensor:
    r"""The EDM noise grid :math:`\sigma_i = (\sigma_{max}^{1/\rho} + \tfrac{i}{N-1}
    (\sigma_{min}^{1/\rho} - \sigma_{max}^{1/\rho}))^\rho`, ``i < N``, followed by 0
    (Karras et al., "Elucidating the Design Space of Diffusion-Based Generative Models",
    2022, eq. 5; the grid of the EnKG sampler, papers.md row 106). float64, length N + 1."""
    check_range("num_steps", num_steps, low=2, owner="karras_sigmas")
    check_range("sigma_min", sigma_min, low=0.0, low_open=True, owner="karras_sigmas")
    check_range("sigma_max", sigma_max, low=sigma_min, low_open=True, owner="karras_sigmas")
    i = torch.arange(num_steps, dtype=torch.float64) / (num_steps - 1)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return torch.cat([(hi + i * (lo - hi)) ** rho, torch.zeros(1, dtype=torch.float64)])


def kappa(abar: torch.Tensor) -> torch.Tensor:
    r""":math:`\kappa = \sqrt{(1 - \bar\alpha)/\bar\alpha}`, the noise-to-signal ratio in which
    deterministic DDIM is an Euler step (Song, Meng & Ermon 2021, eq. 14)."""
    return torch.sqrt((1 - abar) / abar)


__all__ = ["BETA_SCHEDULES", "SUPPORTED_SCHEDULERS", "NoiseSchedule", "from_diffusers",
           "karras_sigmas", "kappa", "vp_schedule"]

