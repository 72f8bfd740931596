"""Each paper's headline phenomenon as a runnable experiment that checks itself.

Every module here holds one paper's phenomenon (or two closely tied ones) and registers it in
:data:`PHENOMENA`; ``trainlab reproduce`` runs them.
"""

from trainlab.phenomena import (  # noqa: E402,F401,I001  (registration)
    advani2020_double_descent,
    agarwala2023_quadratic_eos,
    altintas2025_butterfly,
    bergsma2025_d2z,
    boixadsera2023_rank_increase,
    carbonnelle2019_layer_rotation,
    gilmer2022_warmup_curvature,
    goodfellow2015_interpolation,
    gurari2018_tiny_subspace,
    hayou2024_lora_init,
    hoffer2017_train_longer,
    jin2023_matrix_sensing,
    karnik2024_tubal,
    kreisler2023_gfs_sharpness,
    kumar2024_nondifferentiable,
    lee2024_grokfast,
    lewandowski2025_spectral_plasticity,
    liu2024_rich_lazy,
    loshchilov2017_sgdr,
    marion2024_resnet_ode,
    min2024_early_alignment,
    pascanu2013_rnn_clipping,
    pezeshki2021_gradient_starvation,
    wu2023_trace_bound,
    saxe2014_deep_linear,
    song2024_kernel_attention,
    tian2025_grokking_features,
    wortsman2023_instabilities,
)
from trainlab.phenomena._base import PHENOMENA, Check, Outcome, Phenomenon

__all__ = ["PHENOMENA", "Check", "Outcome", "Phenomenon"]
