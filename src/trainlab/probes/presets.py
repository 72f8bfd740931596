"""Named sets of probes, so a user can turn on a sensible set at once."""

from __future__ import annotations

from trainlab.errors import UnknownNameError

PRESETS: dict[str, tuple[str, ...]] = {
    "none": (),
    # Cheap enough to run at every step: gradient and update norms, distance from init
    # (rotation) and one pass of per-example gradient statistics (GSNR, noise scale). The
    # batch loss and lr need no probe: the Monitor records them at every step.
    "economy": ("grad-norm", "rotation", "update-ratio", "grad-noise"),
    "standard": ("eval", "grad-norm", "weight-norm", "update-ratio", "rotation", "sharpness"),
    # Everything that applies to any architecture, the curvature probes included; run it at a
    # sparse cadence (the Hessian probes cost tens to hundreds of Hessian-vector products).
    "full": ("eval", "grad-norm", "weight-norm", "update-ratio", "rotation",
             "grad-noise", "effective-rank", "weight-spectrum", "adam-step-size",
             "momentum-alignment", "signal-propagation", "logit-divergence", "attention-logits",
             "sharpness", "preconditioned-sharpness", "hessian-spectrum", "gradient-subspace",
             "init-interpolation", "lojasiewicz", "gen-gap-change", "input-sensitivity",
             "gfs-sharpness"),
}


def expand(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """Expand a comma-separated list of probe names and preset names (order kept, no
    duplicates). A probe may carry its own cadence: ``"sharpness@10"``."""
    from trainlab.probes._probe import PROBES

    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in filter(None, items):
        names = PRESETS.get(item, (item,))
        for name in names:
            base = name.split("@", 1)[0]
            if base not in PROBES:
                raise UnknownNameError("probe", base, [*PROBES.names(), *PRESETS])
            if name not in out:
                out.append(name)
    return out
