"""Probes: measurements of a training run, taken while it runs.

A probe is a small class with a ``name``, a cadence (``every``) and ``measure(ctx)``, which
returns named scalars. :func:`build_probes` turns a spec such as ``"standard,sharpness@10"``
into probe objects.
"""

from __future__ import annotations

from typing import Any

from trainlab.probes import (  # noqa: F401  (registration)
    adam_step_size,
    attention_logits,
    effective_rank,
    evaluation,
    flow_sharpness,
    generalization_gap,
    gradient_noise,
    gradient_subspace,
    gram_condition,
    guessing_bias,
    hessian_spectrum,
    input_sensitivity,
    interpolation,
    logit_divergence,
    lojasiewicz,
    loss,
    momentum_alignment,
    norms,
    preconditioned_sharpness,
    rotation,
    roughness,
    sharpness,
    signal_propagation,
    tangent_alignment,
    weight_spectrum,
)
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.presets import PRESETS, expand
from trainlab.restore import preserved


def build_probes(spec: str | list[str], every: int = 50, **params: dict[str, Any]) -> list[Probe]:
    """Probe objects for ``spec`` (names, presets, ``name@every``); ``params[name]`` holds
    keyword arguments for that probe."""
    probes = []
    for item in expand(spec):
        name, _, cadence = item.partition("@")
        probes.append(PROBES.get(name)(every=int(cadence) if cadence else every,
                                       **params.get(name, {})))
    return probes


__all__ = ["PRESETS", "PROBES", "Measurement", "Probe", "ProbeContext", "build_probes", "expand",
           "preserved"]
