"""Analyses: measurements that are functions of models or runs, taken outside the training
loop (landscape slices, paired-run divergence, layer CKA, weight matching, training Jacobians,
SmoothGrad saliency maps, exact SGD stability, the empirical NTK). One module per analysis;
each entry of :data:`ANALYSES` (``trainlab list analyses``) is the function itself.

Probes (:mod:`trainlab.probes`) run inside the loop and may build on these functions (this
package never imports probes). The off-loop forms of five probes live here with their
registration (roughness index, input derivatives, gradient-flow solution, Lojasiewicz fit and
bound, expected generalization-gap change and SGD-minus-GD); their probes import them.
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
from trainlab.analyses.generalization_gap import expected_gap_change, expected_sgd_minus_gd
from trainlab.analyses.gradient_flow import gfs_sharpness
from trainlab.analyses.input_derivatives import input_derivatives
from trainlab.analyses.landscape import (
    Interpolation,
    filter_normalize,
    interpolate,
    random_direction,
    slice_1d,
    slice_2d,
)
from trainlab.analyses.lojasiewicz import fit_lgi, linear_generalization_bound
from trainlab.analyses.ntk import empirical_ntk, linear_ntk
from trainlab.analyses.roughness import roughness_index
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
ANALYSES.register("roughness-index", roughness_index, papers=(15,),
                  summary="roughness index: std/mean of the normalized total variation of "
                          "random 1-D loss slices")
ANALYSES.register("lojasiewicz-fit", fit_lgi, papers=(44,),
                  summary="Lojasiewicz gradient-inequality constants from (gap, grad norm) pairs")
ANALYSES.register("lojasiewicz-linear-bound", linear_generalization_bound, papers=(44,),
                  summary="generalization bound of a linear model confined to the LGI "
                          "path-length ball (Rademacher)")
ANALYSES.register("input-derivatives", input_derivatives, papers=(25,),
                  summary="1st/2nd/3rd diagonal derivatives of the loss w.r.t. each input "
                          "variable (or its first-layer weights)")
ANALYSES.register("generalization-gap-change", expected_gap_change,
                  papers=(46,), summary="expected change of the generalization gap per SGD step")
ANALYSES.register("sgd-minus-gd", expected_sgd_minus_gd, papers=(46,),
                  summary="second-order expected difference of one SGD epoch and as many GD "
                          "steps: -lr^2 m(m-1)/(4N) grad tr(Sigma)")
ANALYSES.register("gradient-flow-solution", gfs_sharpness, papers=(36,),
                  summary="integrate gradient flow to its limit and measure the sharpness there")

__all__ = ["ANALYSES", "Divergence", "Interpolation", "TrainingJacobian", "critical_lr",
           "empirical_ntk", "expected_gap_change", "expected_sgd_minus_gd", "filter_normalize",
           "fit_lgi", "gfs_sharpness", "hessian_coherence", "input_derivatives", "interpolate",
           "layer_cka", "layer_outputs", "linear_cka", "linear_generalization_bound", "linear_ntk",
           "loss_barrier", "paired_divergence", "parameter_distance", "per_example_hessians",
           "random_direction", "roughness_index", "second_moment_operator", "slice_1d", "slice_2d",
           "smoothgrad", "stability_radius", "training_jacobian", "weight_matching"]
