"""Analyses: measurements that are functions of models or runs rather than per-step probes
(landscape slices, paired-run divergence, training Jacobians, saliency maps, exact SGD
stability). They are registered here so that ``trainlab list analyses`` and the papers
coverage table show them beside the probes; each entry is the function itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainlab.analyses.feature_shift import detect_feature_shift
from trainlab.probes import (
    cka,
    divergence,
    flow_sharpness,
    generalization_gap,
    input_sensitivity,
    landscape,
    lojasiewicz,
    ntk,
    roughness,
    sgd_stability,
    smoothgrad,
)
from trainlab.probes import training_jacobian as tj
from trainlab.probes import weight_matching as wm
from trainlab.registry import Registry

ANALYSES: Registry[Callable[..., Any]] = Registry("analysis")

ANALYSES.register("feature-shift", detect_feature_shift, papers=(84,),
                  summary="localise shifted features by score-based conditional tests")
ANALYSES.register("landscape-slice-1d", landscape.slice_1d, papers=(15, 104),
                  summary="loss along a (filter-normalized) direction through the parameters")
ANALYSES.register("landscape-slice-2d", landscape.slice_2d, papers=(15,),
                  summary="loss on a plane spanned by two (filter-normalized) directions")
ANALYSES.register("interpolation", landscape.interpolate, papers=(104,),
                  summary="loss on the straight line between two parameter vectors")
ANALYSES.register("roughness-index", roughness.roughness_index, papers=(15,),
                  summary="roughness index: std/mean of the normalized total variation of "
                          "random 1-D loss slices")
ANALYSES.register("paired-divergence", divergence.paired_divergence, papers=(8,),
                  summary="distance, loss barrier (raw and permutation-aligned) and CKA of two "
                          "runs")
ANALYSES.register("weight-matching", wm.weight_matching, papers=(8,),
                  summary="permutation of hidden units aligning one MLP to another")
ANALYSES.register("layer-cka", cka.layer_cka, papers=(8,),
                  summary="linear CKA between two models' layer representations")
ANALYSES.register("smoothgrad", smoothgrad.smoothgrad, papers=(69,),
                  summary="noise-averaged input-gradient sensitivity maps (SmoothGrad)")
ANALYSES.register("training-jacobian", tj.training_jacobian, papers=(102,),
                  summary="Jacobian of trained parameters w.r.t. initial ones, with SV regions")
ANALYSES.register("sgd-critical-lr", sgd_stability.critical_lr, papers=(70, 30),
                  summary="exact mean-square linear-stability threshold of SGD at a minimum")
ANALYSES.register("input-derivatives", input_sensitivity.input_derivatives, papers=(25,),
                  summary="1st/2nd/3rd diagonal derivatives of the loss w.r.t. each input "
                          "variable (or its first-layer weights)")
ANALYSES.register("gradient-flow-solution", flow_sharpness.gfs_sharpness, papers=(36,),
                  summary="integrate gradient flow to its limit and measure the sharpness there")
ANALYSES.register("lojasiewicz-fit", lojasiewicz.fit_lgi, papers=(44,),
                  summary="Lojasiewicz gradient-inequality constants from (gap, grad norm) pairs")
ANALYSES.register("generalization-gap-change", generalization_gap.expected_gap_change,
                  papers=(46,), summary="expected change of the generalization gap per SGD step")
ANALYSES.register("empirical-ntk", ntk.empirical_ntk, papers=(68,),
                  summary="empirical neural tangent kernel J J^T of any model on a point set")
ANALYSES.register("linear-ntk", ntk.linear_ntk, papers=(68,),
                  summary="closed-form NTK of a two-layer linear network W2 W1 x")

__all__ = ["ANALYSES"]
