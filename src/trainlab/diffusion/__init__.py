"""Diffusion models: noise schedules, samplers and score matching on data with a known score,
and the papers on what gradient descent does when it learns a score and on how the initial
condition of sampling decides what is generated (rows 5, 49, 61, 85, 106, 107, 119).

The registry :data:`DIFFUSION` (``trainlab list diffusion``) holds the methods of the rows.
"""

from trainlab.diffusion import (  # noqa: F401  (registration)
    cao2024_deq_sampling,
    chen2024_find,
    guo2024_initno,
    han2024_score_gd,
    marion2024_implicit_diffusion,
    zheng2024_enkg,
    zhou2026_ar_diffusion,
    zhou2026_condition_ot,
)
from trainlab.diffusion._registry import DIFFUSION
from trainlab.diffusion.dsm import (
    FeatureDenoiser,
    dsm_loss,
    forward_process,
    noised_regression_data,
    time_features,
)
from trainlab.diffusion.mixtures import GaussianMixture, ring_mixture, signal_mixture
from trainlab.diffusion.samplers import (
    SampleResult,
    ddim_sample,
    ddim_step,
    ddpm_sample,
    ddpm_step,
    probability_flow_sample,
    tweedie_x0,
    unet_denoiser,
)
from trainlab.diffusion.schedules import NoiseSchedule, from_diffusers, karras_sigmas, vp_schedule

__all__ = ["DIFFUSION", "FeatureDenoiser", "GaussianMixture", "NoiseSchedule", "SampleResult",
           "ddim_sample", "ddim_step", "ddpm_sample", "ddpm_step", "dsm_loss",
           "forward_process", "from_diffusers", "karras_sigmas", "noised_regression_data",
           "probability_flow_sample", "ring_mixture", "signal_mixture", "time_features",
           "tweedie_x0", "unet_denoiser", "vp_schedule"]
