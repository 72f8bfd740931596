"""Probes: measurements of a training run, taken while it runs.

A probe is a small class with a ``name``, a cadence (``every``) and ``measure(ctx)``, which
returns named scalars. :func:`build_probes` turns a spec such as ``"standard,sharpness@10"``
into probe objects.
"""

from __future__ import annotations

from typing import Any

from trainlab.errors import ConfigError
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


def parse_spec(spec: str | list[str]) -> tuple[tuple[str, int | None], ...]:
    """The probe spec (names, presets, ``name@every``) as ``(name, every or None)`` pairs,
    each probe once: a probe named twice keeps its first place and the last cadence given.

    Raises:
        ConfigError: a cadence that is not a positive integer.
    """
    order: dict[str, int | None] = {}
    for item in expand(spec):
        name, at, cadence = item.partition("@")
        every = None
        if at:
            if not cadence.strip().isdigit() or int(cadence) < 1:
                raise ConfigError(f"probe cadence in {item!r} must be a positive integer "
                                  f"(name@every, e.g. {name}@10)")
            every = int(cadence)
        if every is not None or name not in order:
            order[name] = every
    return tuple(order.items())


def build_probes(spec: str | list[str], every: int = 50, **params: dict[str, Any]) -> list[Probe]:
    """Probe objects for ``spec`` (names, presets, ``name@every``; see :func:`parse_spec`);
    ``params[name]`` holds keyword arguments for that probe. Unknown names raise
    :class:`~trainlab.errors.UnknownNameError`, bad cadences :class:`ConfigError`."""
    return [PROBES.get(name)(every=cadence or every, **params.get(name, {}))
            for name, cadence in parse_spec(spec)]


__all__ = ["PRESETS", "PROBES", "Measurement", "Probe", "ProbeContext", "build_probes", "expand",
           "parse_spec",
           "preserved"]
