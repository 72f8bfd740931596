"""Each paper's headline phenomenon as a runnable experiment that checks itself.

Every module here holds one paper's phenomenon (or two closely tied ones) and registers it in
:data:`PHENOMENA`; ``trainlab reproduce`` runs them.
"""

from trainlab.phenomena import (  # noqa: E402,F401,I001  (registration)
    advani2020_double_descent,
    agarwala2023_quadratic_eos,
    altintas2025_butterfly,
    bergsma2025_d2z,
    botros2021_g3_tradeoff,
    cao2024_deq_sampling,
    boixadsera2023_rank_increase,
    carbonnelle2019_layer_rotation,
    chae2024_two_timescale_eg,
    garciatrillos2022_adversarial_boundary,
    gilmer2022_warmup_curvature,
    goodfellow2015_interpolation,
    gorbunov2023_comonotone,
    gurari2018_tiny_subspace,
    han2024_score_gd,
    hamdouche2023_exit_control,
    hayou2024_lora_init,
    hoffer2017_train_longer,
    initial_noise_digits,
    jin2023_matrix_sensing,
    kostic2024_dpnets,
    karnik2024_tubal,
    kreisler2023_gfs_sharpness,
    kulinski2020_feature_shift,
    kumar2024_nondifferentiable,
    kwon2024_penalty,
    lange2023_es_lottery,
    lee2024_grokfast,
    lewandowski2025_spectral_plasticity,
    liu2020_bda,
    liu2024_rich_lazy,
    loshchilov2017_sgdr,
    marion2024_implicit_diffusion,
    marion2024_resnet_ode,
    min2024_early_alignment,
    pascanu2013_rnn_clipping,
    petersen2022_monotonic_sorting,
    pezeshki2021_gradient_starvation,
    proximal_sampler_cold_start,
    richterpowell2021_icgn_fit,
    wu2023_trace_bound,
    zheng2024_enkg,
    zhou2026_condition_errors,
    saxe2014_deep_linear,
    song2024_kernel_attention,
    tian2025_grokking_features,
    vicol2022_warm_cold,
    wortsman2023_instabilities,
)
from trainlab.phenomena._base import PHENOMENA, Check, Outcome, Phenomenon

__all__ = ["PHENOMENA", "Check", "Outcome", "Phenomenon"]
