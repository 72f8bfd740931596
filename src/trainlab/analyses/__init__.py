"""Analyses: measurements that are functions of models or runs, taken outside the training
loop (landscape slices, paired-run divergence, layer CKA, weight matching, training Jacobians,
SmoothGrad saliency maps, exact SGD stability, the empirical NTK). One module per analysis;
each entry of :data:`ANALYSES` (``trainlab list analyses``) is the function itself.

Probes (:mod:`trainlab.probes`) run inside the loop and may build on these functions (this
package never imports probes). Probe modules whose measurement also has an off-loop form
(roughness index, input derivatives, gradient-flow solution, Lojasiewicz fit, expected
generalization-gap change) register that form in :data:`ANALYSES` from their own module, so
those five entries are present once :mod:`trainlab.probes` is imported
(:func:`trainlab.registry.all_registries` imports both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainlab.analyses.cka import layer_cka, layer_outputs, linear_cka
from trainlab.analyses.divergence import (
    Divergence,
    loss_barrier,
    paired_divergence,
    parameter_distance,
)
from trainlab.analyses.feature_shift import detect_feature_shift
from trainlab.analyses.landscape import (
    Interpolation,
    filter_normalize,
    interpolate,
    random_direction,
    slice_1d,
    slice_2d,
)
from trainlab.analyses.ntk import empirical_ntk, linear_ntk
from trainlab.analyses.sgd_stability import (
    critical_lr,
    hessian_coherence,
    per_example_hessians,
    second_moment_operator,
    stability_radius,
)
from trainlab.analyses.smoothgrad import smoothgrad
from trainlab.analyses.training_jacobian import TrainingJacobian, training_jacobian
from trainlab.analyses.weight_matching import weight_matching
from trainlab.registry import Registry

ANALYSES: Registry[Callable[..., Any]] = Registry("analysis")

ANALYSES.register("feature-shift", detect_feature_shift, papers=(84,),
                  summary="localise shifted features by score-based conditional tests")
ANALYSES.register("landscape-slice-1d", slice_1d, papers=(15, 104),
                  summary="loss along a (filter-normalized) direction through the parameters")
ANALYSES.register("landscape-slice-2d", slice_2d, papers=(15,),
                  summary="loss on a plane spanned by two (filter-normalized) directions")
ANALYSES.register("interpolation", interpolate, papers=(104,),
                  summary="loss on the straight line between two parameter vectors")
ANALYSES.register("paired-divergence", paired_divergence, papers=(8,),
                  summary="distance, loss barrier (raw and permutation-aligned) and CKA of two "
                          "runs")
ANALYSES.register("weight-matching", weight_matching, papers=(8,),
                  summary="permutation of hidden units aligning one MLP to another")
ANALYSES.register("layer-cka", layer_cka, papers=(8,),
                  summary="linear CKA between two models' layer representations")
ANALYSES.register("smoothgrad", smoothgrad, papers=(69,),
                  summary="noise-averaged input-gradient sensitivity maps (SmoothGrad)")
ANALYSES.register("training-jacobian", training_jacobian, papers=(102,),
                  summary="Jacobian of trained parameters w.r.t. initial ones, with SV regions")
ANALYSES.register("sgd-critical-lr", critical_lr, papers=(70, 30),
                  summary="exact mean-square linear-stability threshold of SGD at a minimum")
ANALYSES.register("hessian-coherence", hessian_coherence, papers=(70,),
                  summary="Dexter et al.'s coherence of the per-example Hessians, "
                          "lambda_1(S)/max_i lambda_1(H_i)")
ANALYSES.register("empirical-ntk", empirical_ntk, papers=(68,),
                  summary="empirical neural tangent kernel J J^T of any model on a point set")
ANALYSES.register("linear-ntk", linear_ntk, papers=(68,),
                  summary="closed-form NTK of a two-layer linear network W2 W1 x")

__all__ = ["ANALYSES", "Divergence", "Interpolation", "TrainingJacobian", "critical_lr",
           "empirical_ntk", "filter_normalize", "hessian_coherence", "interpolate", "layer_cka",
           "layer_outputs", "linear_cka", "linear_ntk", "loss_barrier", "paired_divergence",
           "parameter_distance", "per_example_hessians", "random_direction",
           "second_moment_operator", "slice_1d", "slice_2d", "smoothgrad", "stability_radius",
           "training_jacobian", "weight_matching"]
